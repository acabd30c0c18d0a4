package tlsrpt

import (
	"slices"
)

// Domains returns the policy domains of the report, sorted, without
// repeats and without "" (a policy that names no domain).
func (r *Report) Domains() []string {
	var out []string
	for _, p := range r.Policies {
		if p.Policy.Domain != "" {
			out = append(out, p.Policy.Domain)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Totals returns the sums over all policies of the summary counts as
// reported (not of the failure details), saturating at math.MaxInt64.
// Negative counts, which Decode never produces, are skipped.
func (r *Report) Totals() (successful, failed int64) {
	for _, p := range r.Policies {
		if p.Summary.Successful > 0 {
			successful = addSat(successful, p.Summary.Successful)
		}
		if p.Summary.Failure > 0 {
			failed = addSat(failed, p.Summary.Failure)
		}
	}
	return successful, failed
}
