package check

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestTXTRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"example.com", "v=spf1 -all", `example.com. TXT "v=spf1 -all"`},
		{"_dmarc.example.com.", `a"b\c`, `_dmarc.example.com. TXT "a\"b\\c"`},
		{"x.test", strings.Repeat("a", 255) + "bc", `x.test. TXT "` + strings.Repeat("a", 255) + `" "bc"`},
		{"x.test", "", `x.test. TXT ""`},
	} {
		if got := txtRecord(tc.name, tc.value); got != tc.want {
			t.Errorf("txtRecord(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestTagList(t *testing.T) {
	t.Parallel()
	rec := "v=DMARC1;  p=none ; rua=mailto:a@example.com;"
	if got := parseTagList(rec).set("p", "quarantine", "v").String(); got != "v=DMARC1; p=quarantine; rua=mailto:a@example.com" {
		t.Errorf("set in place: %q", got)
	}
	if got := parseTagList("v=DMARC1; p=reject").set("rua", "mailto:d@x.test", "p").String(); got != "v=DMARC1; p=reject; rua=mailto:d@x.test" {
		t.Errorf("set after: %q", got)
	}
	if got := parseTagList("v=DMARC1; sp=none; p=reject").set("np", "reject", "p").remove("SP").String(); got != "v=DMARC1; p=reject; np=reject" {
		t.Errorf("set and remove: %q", got)
	}
	if got := removeTestFlag("v=DKIM1; t=y:s; p=abc"); got != "v=DKIM1; t=s; p=abc" {
		t.Errorf("removeTestFlag: %q", got)
	}
	if got := removeTestFlag("v=DKIM1; t=y; p=abc"); got != "v=DKIM1; p=abc" {
		t.Errorf("removeTestFlag: %q", got)
	}
}

func TestGrade(t *testing.T) {
	t.Parallel()
	for score, want := range map[int]string{100: "A", 90: "A", 89: "B", 80: "B", 79: "C", 70: "C", 69: "D", 60: "D", 59: "E", 50: "E", 49: "F", 0: "F"} {
		if got := Grade(score); got != want {
			t.Errorf("Grade(%d) = %s, want %s", score, got, want)
		}
	}
	if GradeRank("a") != 0 || GradeRank("F") != 5 || GradeRank("A+") != -1 || GradeRank("") != -1 {
		t.Error("GradeRank")
	}
}

func TestRulesConsistent(t *testing.T) {
	t.Parallel()
	components := map[string]bool{}
	for _, p := range Pillars() {
		for _, c := range p.Components {
			components[p.Name+"/"+c.Name] = true
		}
	}
	weights := 0
	for _, p := range Pillars() {
		sum := 0
		for _, c := range p.Components {
			sum += c.Max
		}
		if sum != p.Weight {
			t.Errorf("pillar %s: components sum to %d, weight %d", p.Name, sum, p.Weight)
		}
		weights += p.Weight
	}
	if weights != 100 {
		t.Errorf("weights sum to %d", weights)
	}
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] {
			t.Errorf("rule %s twice", r.ID)
		}
		seen[r.ID] = true
		if !components[r.Pillar+"/"+r.Component] {
			t.Errorf("rule %s: unknown component %s/%s", r.ID, r.Pillar, r.Component)
		}
		if (r.Severity == OK || r.Severity == Info) != (r.Penalty == 0) {
			t.Errorf("rule %s: severity %s with penalty %d (only warning, error and critical cost points, and they always do)", r.ID, r.Severity, r.Penalty)
		}
		if r.Severity != OK && r.Why == "" {
			t.Errorf("rule %s has no why", r.ID)
		}
	}
}

func TestCriticalPath(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	steps := []Step{
		{Name: "mx", Start: 0, Duration: 50 * ms},
		{Name: "spf", Start: 0, Duration: 120 * ms},
		{Name: "resolve a", After: "mx", Start: 50 * ms, Duration: 50 * ms},
		{Name: "probe a", After: "resolve a", Start: 100 * ms, Duration: 40 * ms},
	}
	if got := strings.Join(criticalPath(steps), " > "); got != "mx > resolve a > probe a" {
		t.Errorf("criticalPath = %q", got)
	}
	if criticalPath(nil) != nil {
		t.Error("criticalPath(nil)")
	}
}

func TestWriteTextColor(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	r := &run{c: c, opts: &c.opts, domain: "x.test"}
	r.add("dmarc.missing", "No record.", "publish it", nil)
	r.add("spf.ok", "fine", "", nil)
	rep := &Report{Domain: "x.test", Findings: r.findings}
	rep.score(func(string) bool { return true })
	var plain, color bytes.Buffer
	if err := WriteText(&plain, rep, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&color, rep, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Error("escape codes without Color")
	}
	for _, want := range []string{ansiRed + "[critical -25]" + ansiReset, ansiGreen + "[ok]" + ansiReset} {
		if !strings.Contains(color.String(), want) {
			t.Errorf("colored output lacks %q:\n%s", want, color.String())
		}
	}
	if !strings.Contains(plain.String(), "x.test  score 75/100  grade C") {
		t.Errorf("plain output:\n%s", plain.String())
	}
}

// FuzzTagList: editing a record for a fix never panics, and a tag set is
// read back.
func FuzzTagList(f *testing.F) {
	f.Add("v=DMARC1; p=none; rua=mailto:a@example.com", "p", "reject")
	f.Add("v=BIMI1; l=; a=;", "a", "https://x.test/vmc.pem")
	f.Add(";;=;==", "", "")
	tagName := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`) // RFC 6376 §3.2 tag-name
	f.Fuzz(func(t *testing.T, rec, tag, value string) {
		tl := parseTagList(rec).set(tag, value, "p")
		s := tl.String()
		// Only a tag=value with a valid name (RFC 6376 §3.2) and a value
		// without white space around it is read back.
		if !tagName.MatchString(tag) || strings.ContainsAny(value, ";=") || strings.Trim(value, " \t\r\n") != value {
			return
		}
		found := false
		for _, kv := range parseTagList(s).tags {
			if strings.EqualFold(kv[0], tag) {
				found = kv[1] == value
				break
			}
		}
		if !found {
			t.Errorf("set(%q, %q) on %q gave %q", tag, value, rec, s)
		}
		_ = parseTagList(s).remove(tag).String()
	})
}
