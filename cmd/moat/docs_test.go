package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The documentation tests hold the README's CLI reference to the command
// tree, and HACKING.md's package map to the directories under internal/:
// every command and flag documented, nothing documented that does not
// exist. Each has a twin that adds something undocumented and wants the
// check to name it, so that the checks are seen to fail.

var (
	flagRE    = regexp.MustCompile(`--[a-z0-9][a-z0-9-]*`)
	commandRE = regexp.MustCompile("^`moat ([^`]*)`")
)

// section returns the text of the README section that starts with heading,
// up to the next heading of the same level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("no %q section", heading)
	}
	rest := doc[i+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// cliDoc is what the README's CLI section documents: for each command path
// ("domains add"), the flags of its usage (the row's first cell) and the
// flags named anywhere in its row; and the flags "every command takes".
type cliDoc struct {
	commands map[string][]string // usage flags
	mentions map[string][]string // every flag of the row
	global   []string
}

func parseCLIDoc(text string) cliDoc {
	doc := cliDoc{commands: map[string][]string{}, mentions: map[string][]string{}}
	if _, after, ok := strings.Cut(text, "Every command takes"); ok {
		para, _, _ := strings.Cut(after, "\n\n")
		doc.global = flagRE.FindAllString(para, -1)
	}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `moat ") {
			continue
		}
		m := commandRE.FindStringSubmatch(strings.TrimPrefix(line, "| "))
		if m == nil {
			continue
		}
		var path []string
		for _, w := range strings.Fields(m[1]) {
			if !regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(w) {
				break
			}
			path = append(path, w)
		}
		key := strings.Join(path, " ")
		doc.commands[key] = append(doc.commands[key], flagRE.FindAllString(m[1], -1)...)
		doc.mentions[key] = append(doc.mentions[key], flagRE.FindAllString(line, -1)...)
	}
	return doc
}

// cliProblems compares the command tree under root with doc.
func cliProblems(root *cobra.Command, doc cliDoc) []string {
	var problems []string
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			walk(sub)
		}
		if c == root || !c.Runnable() {
			return
		}
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		seen[path] = true
		documented, ok := doc.commands[path]
		if !ok {
			problems = append(problems, "command `moat "+path+"` is not in the README's CLI reference")
			return
		}
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" || f.Name == "json" {
				return // every command that prints data takes --json, as the README says
			}
			if !slices.Contains(doc.mentions[path], "--"+f.Name) {
				problems = append(problems, "flag --"+f.Name+" of `moat "+path+"` is not documented")
			}
		})
		for _, name := range documented {
			if c.Flags().Lookup(name[2:]) == nil && c.InheritedFlags().Lookup(name[2:]) == nil {
				problems = append(problems, "`moat "+path+"` is documented with "+name+", which it does not have")
			}
		}
	}
	walk(root)
	for path := range doc.commands {
		if !seen[path] {
			problems = append(problems, "the README documents `moat "+path+"`, which does not exist")
		}
	}
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if !slices.Contains(doc.global, "--"+f.Name) {
			problems = append(problems, "global flag --"+f.Name+" is not in \"Every command takes ...\"")
		}
	})
	for _, name := range doc.global {
		if root.PersistentFlags().Lookup(name[2:]) == nil {
			problems = append(problems, "the README says every command takes "+name+", which does not exist")
		}
	}
	sort.Strings(problems)
	return problems
}

func readmeCLI(t *testing.T) cliDoc {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return parseCLIDoc(section(t, string(b), "## The CLI"))
}

func TestREADMECLIReference(t *testing.T) {
	t.Parallel()
	doc := readmeCLI(t)
	if len(doc.commands) < 10 {
		t.Fatalf("found %d commands in the README's CLI reference; the parser is broken", len(doc.commands))
	}
	for _, p := range cliProblems(newRoot(io.Discard, io.Discard), doc) {
		t.Error(p)
	}
}

// TestREADMECLIReferenceFails shows the check failing: a command and a flag
// added without documentation, and a documented command removed.
func TestREADMECLIReferenceFails(t *testing.T) {
	t.Parallel()
	doc := readmeCLI(t)
	root := newRoot(io.Discard, io.Discard)
	root.AddCommand(&cobra.Command{Use: "undocumented", RunE: func(*cobra.Command, []string) error { return nil }})
	for _, c := range root.Commands() {
		if c.Name() == "serve" {
			c.Flags().Bool("secret-switch", false, "")
		}
		if c.Name() == "import" {
			root.RemoveCommand(c)
		}
	}
	want := []string{
		"command `moat undocumented` is not in the README's CLI reference",
		"flag --secret-switch of `moat serve` is not documented",
		"the README documents `moat import`, which does not exist",
	}
	if got := cliProblems(root, doc); !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// packageMap returns the packages HACKING.md's package map lists: lines
// "- `internal/x` ...".
func packageMap(text string) []string {
	var pkgs []string
	for _, m := range regexp.MustCompile("(?m)^- `((?:internal|cmd|bench)/[a-z0-9/]+)`").FindAllStringSubmatch(text, -1) {
		pkgs = append(pkgs, strings.TrimSuffix(m[1], "/"))
	}
	return pkgs
}

// goPackages lists the directories under root that hold Go files, as paths
// relative to base.
func goPackages(t *testing.T, base, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(filepath.Join(base, root), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			rel, err := filepath.Rel(base, filepath.Dir(path))
			if err != nil {
				return err
			}
			if !slices.Contains(dirs, filepath.ToSlash(rel)) {
				dirs = append(dirs, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func packageProblems(listed, actual []string) []string {
	var problems []string
	for _, p := range actual {
		if !slices.Contains(listed, p) {
			problems = append(problems, "package "+p+" is not in HACKING.md's package map")
		}
	}
	for _, p := range listed {
		if !slices.Contains(actual, p) {
			problems = append(problems, "HACKING.md lists "+p+", which is not a package")
		}
	}
	sort.Strings(problems)
	return problems
}

func hackingPackages(t *testing.T) (listed, actual []string) {
	t.Helper()
	b, err := os.ReadFile("../../HACKING.md")
	if err != nil {
		t.Fatal(err)
	}
	listed = packageMap(string(b))
	for _, root := range []string{"internal", "cmd", "bench"} {
		actual = append(actual, goPackages(t, "../..", root)...)
	}
	return listed, actual
}

func TestHACKINGPackageMap(t *testing.T) {
	t.Parallel()
	listed, actual := hackingPackages(t)
	if len(actual) < 20 {
		t.Fatalf("found %d packages; the walk is broken", len(actual))
	}
	for _, p := range packageProblems(listed, actual) {
		t.Error(p)
	}
}

// TestHACKINGPackageMapFails shows the check failing: a package added
// without a line, and a line for a package that is gone.
func TestHACKINGPackageMapFails(t *testing.T) {
	t.Parallel()
	listed, actual := hackingPackages(t)
	actual = append(slices.DeleteFunc(slices.Clone(actual), func(p string) bool { return p == "internal/snapshot" }), "internal/newthing")
	want := []string{
		"HACKING.md lists internal/snapshot, which is not a package",
		"package internal/newthing is not in HACKING.md's package map",
	}
	if got := packageProblems(listed, actual); !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
