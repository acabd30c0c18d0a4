package check

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"
)

// Severity says how urgent a finding is. Only warning, error and critical
// findings cost points; ok and info findings never do.
type Severity string

// Severities, most urgent first.
const (
	Critical Severity = "critical" // the protection is absent or actively harmful
	Error    Severity = "error"    // the protection is broken: receivers ignore it or mail fails
	Warning  Severity = "warning"  // the protection works but is weaker than it should be
	Info     Severity = "info"     // worth knowing; never a penalty
	OK       Severity = "ok"       // checked and in order
)

// rank orders severities for sorting, most urgent first.
func (s Severity) rank() int {
	switch s {
	case Critical:
		return 0
	case Error:
		return 1
	case Warning:
		return 2
	case Info:
		return 3
	default:
		return 4
	}
}

// Report is the result of checking one domain. Its JSON form is documented
// in README.md ("Domain check"); the top level always has domain, score, grade and
// findings.
type Report struct {
	Domain string `json:"domain"` // the domain checked, lower-case A-label
	// Score is 0 to 100: the sum of the pillar scores.
	Score int `json:"score"`
	// Grade is "A" (score ≥ 90), "B" (≥ 80), "C" (≥ 70), "D" (≥ 60), "E"
	// (≥ 50) or "F".
	Grade string `json:"grade"`
	// Findings are every check's outcome, ok ones included, ordered by
	// pillar, component, severity (most urgent first) and id.
	Findings []Finding `json:"findings"`
	// Pillars are the three scored pillars with their components.
	Pillars []Pillar `json:"pillars"`
	// NullMX is set when the domain publishes a null MX (RFC 7505): it
	// receives no mail, and the transport and brand pillars are not
	// applicable (they get full points).
	NullMX    bool      `json:"null_mx"`
	Timings   Timings   `json:"timings"`
	CheckedAt time.Time `json:"checked_at"`
}

// Finding is the outcome of one check.
type Finding struct {
	// ID is stable and names the check and outcome, such as
	// "spf.lookup-limit"; Rules lists every ID.
	ID        string   `json:"id"`
	Pillar    string   `json:"pillar"`    // "impersonation", "transport" or "brand"
	Component string   `json:"component"` // "spf", "dkim", "dmarc", "mta-sts", "tls-rpt", "starttls", "bimi"
	Severity  Severity `json:"severity"`
	// Penalty is the points this finding costs its component (its rule's
	// penalty, the same for every finding with this ID).
	Penalty int `json:"penalty"`
	// Message says what was found, with the values involved.
	Message string `json:"message"`
	// Why says why it matters.
	Why string `json:"why"`
	// Fix is the exact DNS record or change that fixes it; "" when
	// nothing needs fixing.
	Fix string `json:"fix"`
	// Details holds structured data (records seen, the SPF tree, probe
	// steps); its shape depends on the ID.
	Details any `json:"details,omitempty"`
}

// Pillar is one scored pillar.
type Pillar struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"` // the most points the pillar gives
	Score  int    `json:"score"`  // the sum of its components' scores
	// Applicable is false for transport and brand on a null MX domain;
	// such a pillar scores its whole weight.
	Applicable bool        `json:"applicable"`
	Components []Component `json:"components"`
}

// Component is one scored part of a pillar.
type Component struct {
	Name string `json:"name"`
	Max  int    `json:"max"` // the most points the component gives
	// Penalty is the sum of the penalties of its findings (it may exceed
	// Max).
	Penalty int `json:"penalty"`
	// Score is max(0, Max - Penalty); Max when the pillar is not
	// applicable.
	Score int `json:"score"`
}

// Timings say what the wall time of a check is made of.
type Timings struct {
	// Total is the wall time of the whole check.
	Total time.Duration
	// Steps are the timed parts of the check, by start time.
	Steps []Step
	// CriticalPath names the chain of steps that ended last, each waiting
	// for the one before it: the longest dependency chain.
	CriticalPath []string
	// DNSQueries counts the lookups made through Options.Resolver: each
	// name and type once per check (repeats are answered from a per-check
	// cache and counted in DNSCacheHits); a host address lookup (A and
	// AAAA, sent together) counts once. The raw DNSSEC and TLSA queries to
	// Options.DNSAddr are not counted; they appear as steps.
	DNSQueries   int
	DNSCacheHits int
	// DNSTime is the sum of the durations of those queries: what the check
	// would spend on DNS if it ran every query one after the other.
	DNSTime time.Duration
}

// Step is one timed part of a check.
type Step struct {
	Name string // e.g. "mx", "probe mx1.example.com", "spf"
	// After names the step this one waited for ("" when it started with
	// the check).
	After    string
	Start    time.Duration // since the check started
	Duration time.Duration
}

// End is when the step ended, since the check started.
func (s Step) End() time.Duration { return s.Start + s.Duration }

func ms(d time.Duration) float64 {
	return float64(d.Round(10*time.Microsecond)) / float64(time.Millisecond)
}

// MarshalJSON writes durations as milliseconds.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name       string  `json:"name"`
		After      string  `json:"after,omitempty"`
		StartMS    float64 `json:"start_ms"`
		DurationMS float64 `json:"duration_ms"`
	}{s.Name, s.After, ms(s.Start), ms(s.Duration)})
}

// MarshalJSON writes durations as milliseconds.
func (t Timings) MarshalJSON() ([]byte, error) {
	steps := t.Steps
	if steps == nil {
		steps = []Step{}
	}
	path := t.CriticalPath
	if path == nil {
		path = []string{}
	}
	return json.Marshal(struct {
		TotalMS      float64  `json:"total_ms"`
		Steps        []Step   `json:"steps"`
		CriticalPath []string `json:"critical_path"`
		DNSQueries   int      `json:"dns_queries"`
		DNSCacheHits int      `json:"dns_cache_hits"`
		DNSTimeMS    float64  `json:"dns_time_ms"`
	}{ms(t.Total), steps, path, t.DNSQueries, t.DNSCacheHits, ms(t.DNSTime)})
}

// criticalPath follows After links back from the step that ended last.
func criticalPath(steps []Step) []string {
	if len(steps) == 0 {
		return nil
	}
	byName := map[string]Step{}
	last := steps[0]
	for _, s := range steps {
		byName[s.Name] = s
		if s.End() > last.End() {
			last = s
		}
	}
	var path []string
	for s, ok := last, true; ok && len(path) < len(steps); s, ok = byName[s.After] {
		path = append(path, s.Name)
	}
	slices.Reverse(path)
	return path
}

// Grade returns the grade of a score: A (90 to 100), B (80 to 89), C (70
// to 79), D (60 to 69), E (50 to 59), F (under 50).
func Grade(score int) string {
	switch {
	case score >= 90:
		return "A"
	case score >= 80:
		return "B"
	case score >= 70:
		return "C"
	case score >= 60:
		return "D"
	case score >= 50:
		return "E"
	default:
		return "F"
	}
}

// GradeRank orders grades: A is 0, F is 5; -1 for anything else. Grades are
// compared case-insensitively.
func GradeRank(grade string) int {
	switch grade {
	case "A", "a":
		return 0
	case "B", "b":
		return 1
	case "C", "c":
		return 2
	case "D", "d":
		return 3
	case "E", "e":
		return 4
	case "F", "f":
		return 5
	}
	return -1
}

// score fills r.Pillars, r.Score and r.Grade from r.Findings:
//
//	component score = max(0, component max − Σ penalties of its findings)
//	pillar score    = Σ component scores (its weight when not applicable)
//	score           = Σ pillar scores
func (r *Report) score(applicable func(pillar string) bool) {
	r.Pillars = nil
	r.Score = 0
	penalty := map[string]int{}
	for _, f := range r.Findings {
		penalty[f.Pillar+"/"+f.Component] += f.Penalty
	}
	for _, ps := range Pillars() {
		p := Pillar{Name: ps.Name, Weight: ps.Weight, Applicable: applicable(ps.Name)}
		for _, cs := range ps.Components {
			c := Component{Name: cs.Name, Max: cs.Max, Penalty: penalty[ps.Name+"/"+cs.Name]}
			c.Score = max(0, c.Max-c.Penalty)
			if !p.Applicable {
				c.Score = c.Max
			}
			p.Score += c.Score
			p.Components = append(p.Components, c)
		}
		r.Score += p.Score
		r.Pillars = append(r.Pillars, p)
	}
	r.Grade = Grade(r.Score)
}

// sortFindings orders findings by pillar, component, severity, id and
// message, so a report does not depend on the order checks finished in.
func sortFindings(fs []Finding) {
	order := map[string]int{}
	i := 0
	for _, p := range Pillars() {
		for _, c := range p.Components {
			order[p.Name+"/"+c.Name] = i
			i++
		}
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(order[a.Pillar+"/"+a.Component], order[b.Pillar+"/"+b.Component]),
			cmp.Compare(a.Severity.rank(), b.Severity.rank()),
			cmp.Compare(a.ID, b.ID),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// Has reports whether the report has a finding with id.
func (r *Report) Has(id string) bool {
	return r.Find(id) != nil
}

// Find returns the first finding with id, or nil.
func (r *Report) Find(id string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

// sortSteps orders steps by start time, then name.
func sortSteps(steps []Step) {
	slices.SortStableFunc(steps, func(a, b Step) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Name, b.Name))
	})
}
