package check_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/check"
)

var update = flag.Bool("update", false, "rewrite the rules table of README.md")

// docsFiles may hold the rules table.
var docsFiles = []string{"../../README.md"}

// rulesTable renders check.Rules as the Markdown table of README.md.
func rulesTable() string {
	var b strings.Builder
	b.WriteString("| id | pillar / component | severity | penalty |\n|---|---|---|---|\n")
	for _, r := range check.Rules() {
		fmt.Fprintf(&b, "| `%s` | %s / %s | %s | %d |\n", r.ID, r.Pillar, r.Component, r.Severity, r.Penalty)
	}
	return b.String()
}

// TestDocsRules keeps the table of finding ids, severities and penalties
// in README.md identical to check.Rules, so that the documented
// scoring is the one applied. Run with -update to rewrite it.
func TestDocsRules(t *testing.T) {
	t.Parallel()
	docsFile, doc := "", ""
	for _, f := range docsFiles {
		data, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(data), "<!-- rules:begin") {
			docsFile, doc = f, string(data)
			break
		}
	}
	if docsFile == "" {
		t.Fatalf("no rules:begin / rules:end markers in %v: the scoring documentation is missing", docsFiles)
	}
	begin := strings.Index(doc, "<!-- rules:begin")
	end := strings.Index(doc, "<!-- rules:end -->")
	if end < begin {
		t.Fatalf("%s: rules:end before rules:begin", docsFile)
	}
	start := begin + strings.Index(doc[begin:], "-->") + len("-->\n")
	got := doc[start:end]
	want := rulesTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(docsFile, []byte(doc[:start]+want+doc[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the rules table of %s differs from check.Rules; run go test ./internal/check -run TestDocsRules -update", docsFile)
}
