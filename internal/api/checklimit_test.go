package api_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/store"
)

// TestCheckRateLimit: an organization that runs its checks faster than
// Deps.CheckLimit allows is answered 429 rate_limited with Retry-After,
// and nothing is checked or stored; another organization is not held back.
func TestCheckRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, store.Options{DataDir: t.TempDir()}, func(d *api.Deps) {
		d.CheckLimit = ratelimit.New[int64](rate.Every(time.Hour), 2, 100)
	})
	a, b := e.org(t, "acme", 0), e.org(t, "beta", 0)
	ta, _ := e.token(t, a, "ci", "write")
	tb, _ := e.token(t, b, "ci", "write")
	check := jsonReq("POST", "/api/v1/checks", map[string]string{"domain": "example.com"})
	for range 2 {
		e.must(t, ta, check, 201)
	}
	res := e.must(t, ta, check, 429)
	v := res.json(t)["error"].(map[string]any)
	secs, err := strconv.Atoi(res.header.Get("Retry-After"))
	if v["code"] != "rate_limited" || !strings.Contains(v["message"].(string), "too many domain checks") || err != nil || secs < 1 || secs > 3600 {
		t.Errorf("third check: %v, Retry-After %q", v, res.header.Get("Retry-After"))
	}
	if cs, err := e.op.Checks(t.Context(), "example.com", 100); err != nil || len(cs) != 2 {
		t.Errorf("checks stored: %d (%v), want 2", len(cs), err)
	}
	e.must(t, tb, check, 201)
}

// TestAllowCheck: NewCheckLimiter gives CheckBurst checks at once, then
// one every CheckEvery, per organization.
func TestAllowCheck(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	d := api.Deps{CheckLimit: api.NewCheckLimiter(), Now: func() time.Time { return now }}
	for i := range api.CheckBurst {
		if err := d.AllowCheck(1); err != nil {
			t.Fatalf("check %d of the burst: %v", i+1, err)
		}
	}
	err := d.AllowCheck(1)
	var le *api.CheckLimitError
	if !errors.As(err, &le) || le.Wait <= 0 || le.Wait > api.CheckEvery {
		t.Fatalf("past the burst: %v", err)
	}
	if err := d.AllowCheck(2); err != nil {
		t.Errorf("another organization: %v", err)
	}
	now = now.Add(api.CheckEvery)
	if err := d.AllowCheck(1); err != nil {
		t.Errorf("after %s: %v", api.CheckEvery, err)
	}
	if err := (api.Deps{}).AllowCheck(1); err != nil {
		t.Errorf("no limiter: %v", err)
	}
}
