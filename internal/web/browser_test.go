package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// findChromium returns the browser's path, or skips the test (fails it
// under MOAT_REQUIRE_BROWSER=1, as CI sets).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MOAT_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium on PATH and MOAT_REQUIRE_BROWSER=1: install it (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: the browser tests are skipped (apt-get install chromium; MOAT_REQUIRE_BROWSER=1 makes this a failure)")
	return ""
}

// artifacts is the directory of the screenshots: $MOAT_ARTIFACTS, or
// test-artifacts/screenshots at the repository's root (git-ignored).
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MOAT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "test-artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless chromium on one tab, with every console message,
// exception and Content-Security-Policy violation collected.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string

	mu       sync.Mutex
	messages []string
}

// cspProbe records CSP violations in the page; it runs before the page's
// own scripts (injected by the protocol, so the CSP does not apply to it).
const cspProbe = `window.__csp = []; document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});`

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := findChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base, dir: artifacts(t)}
	// The first run starts the browser and binds its life to the context
	// it is given: the test's, not one with a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
			b.mu.Unlock()
		}
	}()
	inject := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})
		return chromedp.Void{}, err
	}
	if _, err := chromedp.Run(ctx, inject); err != nil {
		t.Fatalf("injecting the CSP probe: %v", err)
	}
	return b
}

// do runs steps with a bounded wait, failing the test with what.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.shot("failed-" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, what))
		b.t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// until waits until a JavaScript expression is true.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	b.do(what, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		return err
	}))
}

// shot saves a full-page screenshot as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Error(err)
	}
}

// clean fails the test on any console message, exception or CSP
// violation so far, naming the page.
func (b *browser) clean(page string) {
	b.t.Helper()
	// Give late messages of the page a moment to arrive.
	time.Sleep(100 * time.Millisecond)
	b.mu.Lock()
	msgs := b.messages
	b.messages = nil
	b.mu.Unlock()
	for _, m := range msgs {
		b.t.Errorf("%s: browser console: %s", page, m)
	}
	if v := eval[[]string](b, `window.__csp || []`); len(v) > 0 {
		b.t.Errorf("%s: Content-Security-Policy violations: %v", page, v)
	}
}

// page opens path, waits for sel, checks it is clean and takes its
// screenshot.
func (b *browser) page(path, sel, shot string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
	b.shot(shot)
	b.clean(path)
}

// TestBrowser drives the dashboard in chromium against a real Moat web
// server on 127.0.0.1 (plain HTTP, as under --dev): sign in by keyboard,
// add a domain, verify its records against a test DNS server, switch a
// mode past the readiness verdict, open the TLS chart and a drill-down,
// create and revoke a token, switch from an MSP into its customer, and a
// phone-sized overview. No page may log to the console or violate the
// Content-Security-Policy; every page leaves a screenshot.
func TestBrowser(t *testing.T) {
	t.Parallel()
	findChromium(t)
	e := newEnv(t)
	e.org("papa", "")
	e.org("charlie", "papa")
	e.user("owner@papa.example", "papa", store.RoleOwner)
	e.domain("acme.example", "papa")
	e.domain("shop.example", "charlie")
	e.reports("acme.example", 30, "certificate-expired", 4)
	e.reports("shop.example", 10, "", 0)
	e.storeFailure("browser", "acme.example")
	e.submitDMARC(dmarcFeedback("Google LLC", "g-1", "acme.example", 2, recCompliant, recSES, recSpoof, recForward))
	e.submitDMARC(dmarcFeedback("Yahoo Inc", "y-1", "acme.example", 5, recSES))
	ctx := context.Background()
	if err := e.st.RecordCertificate(ctx, "acme.example", testNow.Add(-12*24*time.Hour), testNow.Add(78*24*time.Hour), "issued by Test CA, expires 2026-08-06"); err != nil {
		t.Fatal(err)
	}
	svc := hosting.New(e.st, testHosting, func() time.Time { return testNow.Add(-8 * 24 * time.Hour) })
	if _, _, err := svc.Set(ctx, "acme.example", hosting.Change{MX: []string{"mx1.acme.example", "mx2.acme.example", "mx3.acme.example"}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL)

	// Sign in by keyboard alone: tab to the fields, submit with Enter.
	b.do("open the sign-in page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("email")))
	b.shot("01-login")
	b.clean("/login")
	b.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatal("tabbing never reached the email field")
		}
		b.do("tab", chromedp.KeyEvent("\t"))
		if eval[string](b, `document.activeElement.id`) == "email" {
			break
		}
	}
	b.do("type the email", chromedp.KeyEvent("owner@papa.example\t"))
	if id := eval[string](b, `document.activeElement.id`); id != "password" {
		t.Fatalf("tab from the email went to %q", id)
	}
	b.do("type the password and Enter", chromedp.KeyEvent(testPassword+"\r"), chromedp.WaitVisible(chromedp.ID("domains")))
	b.shot("02-overview")
	b.clean("/")

	// A phone-sized overview: the page fits, the table scrolls.
	b.do("phone viewport", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile), chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("domains")))
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("the overview is %d px wide on a 375 px screen", w)
	}
	b.shot("03-overview-phone")
	b.clean("/ (phone)")
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))

	// Add a domain and see its records.
	b.page("/domains/new", "#name", "04-domain-new")
	b.do("fill the form",
		chromedp.SendKeys(chromedp.ID("name"), "newshop.example"),
		chromedp.SendKeys(chromedp.ID("mx"), "mx1.newshop.example"),
		chromedp.Click(chromedp.CSS(`form[action="/domains/new"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("rec-2")))
	if txt := eval[string](b, `document.getElementById("rec-1").textContent`); txt != "_mta-sts.newshop.example. CNAME newshop.example._mta-sts.sts.moat.test." {
		t.Errorf("record shown: %q", txt)
	}
	b.shot("05-domain-records")
	b.clean("/domains/newshop.example/setup")

	// The customer publishes the records; verify swaps the result in.
	d, err := e.st.Domain(ctx, "newshop.example")
	if err != nil {
		t.Fatal(err)
	}
	zone := fmt.Sprintf(`
mta-sts.newshop.example. CNAME mta-sts.moat.test.
mta-sts.moat.test. A 192.0.2.1
_mta-sts.newshop.example. CNAME newshop.example._mta-sts.sts.moat.test.
newshop.example._mta-sts.sts.moat.test. TXT %q
_smtp._tls.newshop.example. CNAME newshop.example._smtp._tls.sts.moat.test.
newshop.example._smtp._tls.sts.moat.test. TXT %q
`, hosting.STSRecord(d.PolicyID), testHosting.TLSRPTRecord(d))
	if err := e.dns.Set(zone); err != nil {
		t.Fatal(err)
	}
	b.do("verify", chromedp.Click(chromedp.CSS(`#verify button`)), chromedp.WaitVisible(chromedp.ID("verify-results")))
	if n := eval[int](b, `document.querySelectorAll("#verify-results .state-ok").length`); n != 3 {
		t.Errorf("%d of 3 records verified: %s", n, eval[string](b, `document.getElementById("verify-results").innerText`))
	}
	b.shot("06-domain-verified")
	b.clean("verify")

	// Switch a domain with failures to enforce: the verdict is shown and
	// a confirmation asked for.
	b.page("/domains/acme.example", "#readiness", "07-domain-policy")
	b.do("choose enforce", chromedp.SetValue(chromedp.ID("mode"), "enforce"),
		chromedp.Click(chromedp.CSS(`#policy-form button.primary`)), chromedp.WaitVisible(chromedp.ID("confirm-box")))
	b.shot("08-domain-confirm")
	b.clean("enforce, not confirmed")
	b.do("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.Click(chromedp.CSS(`#policy-form button.primary`)))
	b.until("saved", `document.body.innerText.includes("Saved: policy version 3")`)
	b.shot("09-domain-enforced")
	b.clean("enforce, confirmed")

	// The TLS chart with its events, and a drill-down.
	b.page("/domains/acme.example/reports", "#sessions-chart", "10-reports-domain")
	b.until("the chart image", `document.getElementById("sessions-chart").complete && document.getElementById("sessions-chart").naturalWidth > 0`)
	b.do("drill down", chromedp.Click(chromedp.CSS(`#by-result a`)), chromedp.WaitVisible(chromedp.ID("drill-reasons")))
	if !strings.Contains(eval[string](b, `document.getElementById("drill").innerText`), "X509_V_ERR_CERT_HAS_EXPIRED") {
		t.Error("the drill-down does not show the reason")
	}
	b.shot("11-reports-drill")
	b.clean("drill-down")
	b.page("/reports", "#by-domain", "12-reports")
	b.do("open a raw report", chromedp.Click(chromedp.CSS(`#reports-list a`)), chromedp.WaitVisible(chromedp.ID("raw-report")))
	b.shot("13-report-raw")
	b.clean("raw report")
	b.page("/intake", "#intake-log", "14-intake")
	b.page("/dmarc/failures", "#failures", "14-dmarc-failures")
	b.do("open a failure report", chromedp.Click(chromedp.CSS(`#failures a`)), chromedp.WaitVisible(chromedp.ID("redacted")))
	if text := eval[string](b, `document.querySelector("main").innerText`); strings.Contains(text, "jane.browser@") || !strings.Contains(text, "j***@acme.example") {
		t.Errorf("the failure report page is not redacted: %s", text)
	}
	b.shot("14-dmarc-failure")
	b.clean("failure report")

	// DMARC: every domain, a domain's senders by class, the impact of
	// p=reject, the report list and one report; upload a report.
	b.page("/dmarc", "#dmarc-by-domain", "20-dmarc")
	b.until("the DMARC chart", `document.getElementById("dmarc-chart").complete && document.getElementById("dmarc-chart").naturalWidth > 0`)
	b.page("/domains/acme.example/dmarc", "#dmarc-sources", "21-dmarc-senders")
	b.do("the misconfigured tab", chromedp.Click(chromedp.CSS(`#class-tabs a[data-class="misconfigured"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#class-tabs a[data-class="misconfigured"][aria-current="page"]`)))
	if txt := eval[string](b, `document.getElementById("dmarc-sources").innerText`); !strings.Contains(txt, "Amazon SES") || strings.Contains(txt, recSpoof.ip) {
		t.Errorf("the misconfigured tab shows:\n%s", txt)
	}
	b.shot("22-dmarc-misconfigured")
	b.clean("misconfigured tab")
	b.do("the impact", chromedp.Click(chromedp.ID("impact-link")), chromedp.WaitVisible(chromedp.ID("impact-by-source")))
	if got := eval[string](b, `document.getElementById("impact-failing").textContent`); got != "52" {
		t.Errorf("impact: %q failing, want 52 (20+7+5+20)", got)
	}
	b.shot("23-dmarc-impact")
	b.clean("impact")
	b.page("/dmarc/reports", "#dmarc-reports", "24-dmarc-reports")
	file := filepath.Join(t.TempDir(), "upload.xml")
	if err := os.WriteFile(file, dmarcFeedback("Browser Corp", "browser-1", "acme.example", 1, recCompliant, recSES), 0o600); err != nil {
		t.Fatal(err)
	}
	b.do("upload a report", chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{file}),
		chromedp.Click(chromedp.CSS(`#upload button.primary`)), chromedp.WaitVisible(chromedp.ID("upload-outcomes")))
	if txt := eval[string](b, `document.getElementById("upload-outcomes").innerText`); !strings.Contains(txt, "stored") || !strings.Contains(txt, "browser-1") {
		t.Errorf("the upload shows:\n%s", txt)
	}
	if n, err := e.st.CountDMARCReports(ctx, store.DMARCFilter{Domain: "acme.example"}); err != nil || n != 3 {
		t.Errorf("after the upload: %d reports, %v", n, err)
	}
	b.shot("25-dmarc-uploaded")
	b.clean("upload")
	b.do("again: a duplicate", chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{file}),
		chromedp.Click(chromedp.CSS(`#upload button.primary`)), chromedp.WaitVisible(chromedp.CSS(`#upload-outcomes .outcome-duplicate`)))
	b.do("open the report", chromedp.Click(chromedp.CSS(`#upload-outcomes a`)), chromedp.WaitVisible(chromedp.ID("dmarc-report")))
	if txt := eval[string](b, `document.getElementById("dmarc-report").innerText`); !strings.Contains(txt, "Browser Corp") {
		t.Errorf("the report page shows:\n%s", txt)
	}
	b.shot("26-dmarc-report")
	b.clean("DMARC report")
	b.page("/domains/acme.example/setup", "#dmarc-tags", "27-domain-records-dmarc")
	b.page("/checks", "#grades", "15-checks")
	b.page("/domains/acme.example/checks", "#check-history", "15-domain-checks")
	b.do("run a check", chromedp.Click(chromedp.CSS(`main form button.primary`)), chromedp.WaitVisible(chromedp.CSS(`.findings`)))
	if !strings.Contains(eval[string](b, `document.querySelector("main").innerText`), "Check of acme.example") {
		t.Error("the check page does not name the domain")
	}
	b.shot("15-check-report")
	b.clean("check")

	// Create a token, see its secret once, revoke it.
	b.page("/settings", "#tokens", "16-settings")
	b.do("create a token", chromedp.SendKeys(chromedp.ID("token-name"), "ci"),
		chromedp.Click(chromedp.CSS(`form[action="/settings/tokens"] button`)), chromedp.WaitVisible(chromedp.ID("token-secret")))
	if s := eval[string](b, `document.getElementById("token-secret").textContent`); !strings.HasPrefix(s, "moat_t_") {
		t.Errorf("token secret %q", s)
	}
	b.shot("17-token-created")
	b.clean("token created")
	b.do("revoke it", chromedp.Click(chromedp.CSS(`#tokens button.danger`)))
	b.until("revoked", `document.getElementById("tokens") && document.getElementById("tokens").innerText.includes("revoked")`)
	b.shot("18-token-revoked")
	b.clean("token revoked")

	// From the MSP into its customer.
	b.do("switch to the customer", chromedp.Click(chromedp.CSS(`#customers form button`)))
	b.until("in the customer", `document.querySelector(".brand .name").textContent.trim() === "Charlie Inc."`)
	b.do("the customer's domains", chromedp.WaitVisible(chromedp.ID("domains")))
	if txt := eval[string](b, `document.getElementById("domains").innerText`); !strings.Contains(txt, "shop.example") || strings.Contains(txt, "acme.example") {
		t.Errorf("the customer's overview shows:\n%s", txt)
	}
	b.shot("19-customer-overview")
	b.clean("customer")
}
