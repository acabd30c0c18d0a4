package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSMTPSpool: the spool is on by default with a one-minute delay;
// both can be set; a delay outside 1s..24h is refused naming the key.
func TestSMTPSpool(t *testing.T) {
	t.Parallel()
	c, err := Load(Source{Environ: []string{"MOAT_ZONE=sts.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Intake.SMTPSpool || c.Intake.SpoolMaxDelay != time.Minute {
		t.Errorf("defaults: smtp_spool %v, spool_max_delay %v; want true and 1m", c.Intake.SMTPSpool, c.Intake.SpoolMaxDelay)
	}
	c, err = Load(Source{Environ: []string{"MOAT_ZONE=sts.example.net", "MOAT_INTAKE_SMTP_SPOOL=false", "MOAT_INTAKE_SPOOL_MAX_DELAY=5m"}})
	if err != nil || c.Intake.SMTPSpool || c.Intake.SpoolMaxDelay != 5*time.Minute {
		t.Errorf("set: %+v, %v", c.Intake, err)
	}
	for _, d := range []string{"500ms", "25h"} {
		_, err := Load(Source{Environ: []string{"MOAT_ZONE=sts.example.net", "MOAT_INTAKE_SPOOL_MAX_DELAY=" + d}})
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "intake.spool_max_delay") {
			t.Errorf("spool_max_delay %s: error %v, want a *FieldError naming intake.spool_max_delay", d, err)
		}
	}
}
