package check

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// TextOptions configures WriteText.
type TextOptions struct {
	// Color writes ANSI colors (for a terminal).
	Color bool
}

// ANSI colors.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
)

// pillarTitle names a pillar for people.
func pillarTitle(name string) string {
	switch name {
	case Impersonation:
		return "Impersonation (SPF, DKIM, DMARC)"
	case Transport:
		return "Transport privacy (MTA-STS, TLS-RPT, STARTTLS)"
	case Brand:
		return "Brand (BIMI)"
	}
	return name
}

// componentTitle names a component for people.
func componentTitle(name string) string {
	switch name {
	case "starttls":
		return "MX and STARTTLS"
	case "tls-rpt":
		return "TLS-RPT"
	case "mta-sts":
		return "MTA-STS"
	}
	return strings.ToUpper(name)
}

// WriteText writes the report for people, grouped by pillar and component:
// every finding with its severity and penalty; for those that cost points,
// why it matters and the fix.
func WriteText(w io.Writer, r *Report, opts TextOptions) error {
	bw := bufio.NewWriter(w)
	paint := func(code, s string) string {
		if !opts.Color || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	gradeColor := ansiRed
	switch {
	case r.Score >= 80:
		gradeColor = ansiGreen
	case r.Score >= 60:
		gradeColor = ansiYellow
	}
	fmt.Fprintf(bw, "%s  score %s  grade %s\n", paint(ansiBold, r.Domain), paint(gradeColor, fmt.Sprintf("%d/100", r.Score)), paint(ansiBold+gradeColor, r.Grade))
	for _, p := range r.Pillars {
		na := ""
		if !p.Applicable {
			na = " (not applicable: null MX, full points)"
		}
		fmt.Fprintf(bw, "\n%s  %d/%d%s\n", paint(ansiBold, pillarTitle(p.Name)), p.Score, p.Weight, na)
		for _, c := range p.Components {
			fmt.Fprintf(bw, "  %s  %d/%d\n", paint(ansiBold, componentTitle(c.Name)), c.Score, c.Max)
			for _, f := range r.Findings {
				if f.Pillar == p.Name && f.Component == c.Name {
					writeFinding(bw, f, paint)
				}
			}
		}
	}
	t := r.Timings
	fmt.Fprintf(bw, "\n%s\n", paint(ansiDim, fmt.Sprintf("Checked in %v: %d DNS lookups that would take %v one after the other; longest chain: %s.",
		t.Total.Round(time.Millisecond), t.DNSQueries, t.DNSTime.Round(time.Millisecond), strings.Join(t.CriticalPath, " → "))))
	return bw.Flush()
}

func writeFinding(w io.Writer, f Finding, paint func(code, s string) string) {
	var code string
	switch f.Severity {
	case Critical, Error:
		code = ansiRed
	case Warning:
		code = ansiYellow
	case OK:
		code = ansiGreen
	default:
		code = ansiCyan
	}
	label := string(f.Severity)
	if f.Penalty > 0 {
		label += fmt.Sprintf(" -%d", f.Penalty)
	}
	fmt.Fprintf(w, "    %s %s\n", paint(code, "["+label+"]"), indent(f.Message, "      "))
	if f.Penalty == 0 {
		return
	}
	fmt.Fprintf(w, "      %s %s\n", paint(ansiDim, "id:"), f.ID)
	fmt.Fprintf(w, "      %s %s\n", paint(ansiDim, "why:"), indent(f.Why, "        "))
	if f.Fix != "" {
		fmt.Fprintf(w, "      %s %s\n", paint(ansiBold, "fix:"), indent(f.Fix, "        "))
	}
	if v, ok := f.Details.(*spfView); ok && (f.ID == "spf.lookup-limit" || f.ID == "spf.void-limit") {
		fmt.Fprintf(w, "      %s\n        %s\n", paint(ansiDim, "tree:"), indent(strings.TrimRight(v.Tree, "\n"), "        "))
	}
}

// indent prefixes every line of s after the first.
func indent(s, prefix string) string {
	return strings.ReplaceAll(s, "\n", "\n"+prefix)
}
