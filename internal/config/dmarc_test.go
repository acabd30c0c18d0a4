package config

import (
	"errors"
	"slices"
	"testing"
)

// TestDMARCIntake: the DMARC addresses default to dmarc@<intake host>,
// are lower-cased, and must be addresses of their own; the decompressed
// size bound of DMARC reports has its own range.
func TestDMARCIntake(t *testing.T) {
	t.Parallel()
	c, err := Load(Source{Environ: []string{"MOAT_ZONE=sts.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Intake.DMARCAddresses, []string{"dmarc@reports.sts.example.net"}) || c.Intake.MaxDMARCXML != 1<<30 {
		t.Errorf("defaults: dmarc_addresses %q, max_dmarc_xml %d", c.Intake.DMARCAddresses, c.Intake.MaxDMARCXML)
	}
	c, err = Load(Source{Environ: []string{"MOAT_ZONE=sts.example.net", "MOAT_INTAKE_DMARC_ADDRESSES= DMARC@Example.NET ,rua@example.net"}})
	if err != nil || !slices.Equal(c.Intake.DMARCAddresses, []string{"dmarc@example.net", "rua@example.net"}) {
		t.Errorf("set: %q, %v", c.Intake.DMARCAddresses, err)
	}
	for _, env := range [][]string{
		{"MOAT_INTAKE_DMARC_ADDRESSES=not-an-address"},
		{"MOAT_INTAKE_ADDRESSES=reports@example.net", "MOAT_INTAKE_DMARC_ADDRESSES=reports@example.net"},
		{"MOAT_INTAKE_MAX_DMARC_XML=1000"},
	} {
		_, err := Load(Source{Environ: append(env, "MOAT_ZONE=sts.example.net")})
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%q: error %v, want a *FieldError", env, err)
		}
	}
}
