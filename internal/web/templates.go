package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageData is what every page template gets. Pages put their own data in
// Data.
type pageData struct {
	Title  string
	P      *auth.Principal // nil when not signed in
	Error  string          // shown at the top, in the error style
	Notice string          // shown at the top, in the notice style
	Next   string          // sign-in: where to go afterwards
	Email  string          // sign-in: the email typed
	Invite *inviteView
	Nav    string // the current section, for the navigation
	Data   any
}

type inviteView struct {
	Org    *store.Org
	Role   string
	Email  string
	Secret string
}

// templates are the parsed page templates: each page is its own template
// set with the layout, so that pages may define the same blocks.
type templates struct {
	pages map[string]*template.Template
}

// staticVersion is a digest of the static files, appended to their URLs
// so that they can be cached for long and still change with a release.
var staticVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// Funcs are the template functions every page may use.
var funcs = template.FuncMap{
	"static": func(name string) string { return "/static/" + name + "?v=" + staticVersion },
	"role":   roleName,
	"can": func(p *auth.Principal, perm string) bool {
		return p != nil && p.Can(perm)
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num": formatInt,
	"pct": func(num, den int64) string {
		if den == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f%%", 100*float64(num)/float64(den))
	},
	"orgName": func(o *store.Org) string {
		if o == nil {
			return ""
		}
		if o.DisplayName != "" {
			return o.DisplayName
		}
		return o.Name
	},
	"accent": func(o *store.Org) string {
		if o == nil || !validColour(o.Accent) {
			return ""
		}
		return o.Accent
	},
	"join":  strings.Join,
	"add":   func(a, b int) int { return a + b },
	"add64": func(a, b int64) int64 { return a + b },
	"list":  func(s ...string) []string { return s },
	// percent writes a fraction (0 to 1) as a percentage.
	"percent": percent,
	// fixid makes a short, stable element id from a text.
	"fixid": func(s string) string {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		return strconv.FormatUint(uint64(h.Sum32()), 36)
	},
}

// percent writes a fraction as a percentage with two decimals: 12.50%.
func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }

// formatInt writes n with thin separators of thousands: 1 234 567.
func formatInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// validColour accepts #rgb and #rrggbb only, so that a branding colour
// cannot inject anything into the page.
func validColour(c string) bool {
	if len(c) != 4 && len(c) != 7 || c[0] != '#' {
		return false
	}
	for _, ch := range c[1:] {
		if (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') && (ch < 'A' || ch > 'F') {
			return false
		}
	}
	return true
}

// pageFiles names every page template: the page's name and its file
// under templates/, parsed with layout.html.
func pageFiles() map[string]string {
	return map[string]string{
		"login":          "login.html",
		"invite":         "invite.html",
		"account":        "account.html",
		"error":          "error.html",
		"overview":       "overview.html",
		"domain_new":     "domain_new.html",
		"domain_setup":   "domain_setup.html",
		"domain":         "domain.html",
		"reports":        "reports.html",
		"report":         "report.html",
		"intake":         "intake.html",
		"dmarc":          "dmarc.html",
		"dmarc_impact":   "dmarc_impact.html",
		"dmarc_reports":  "dmarc_reports.html",
		"dmarc_report":   "dmarc_report.html",
		"dmarc_upload":   "dmarc_upload.html",
		"dmarc_failures": "dmarc_failures.html",
		"dmarc_failure":  "dmarc_failure.html",
		"checks":         "checks.html",
		"check":          "check.html",
		"settings":       "settings.html",
	}
}

// partialFiles are templates that define blocks several pages use; they
// are parsed with every page.
var partialFiles = []string{"checkreport.html", "dmarc_parts.html"}

func parseTemplates() (*templates, error) {
	t := &templates{pages: map[string]*template.Template{}}
	for name, file := range pageFiles() {
		files := []string{"templates/layout.html", "templates/" + file}
		for _, f := range partialFiles {
			files = append(files, "templates/"+f)
		}
		p, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", file, err)
		}
		t.pages[name] = p
	}
	return t, nil
}

// render writes page name with data. An htmx request for a fragment
// (HX-Request without HX-Boosted) gets the page's "content" block only.
func (t *templates) render(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	p, ok := t.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	root := "layout.html"
	if r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Boosted") != "true" && p.Lookup("content") != nil {
		root = "content"
	}
	var buf bytes.Buffer
	if err := p.ExecuteTemplate(&buf, root, data); err != nil {
		http.Error(w, "template "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "HX-Request, Cookie")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// staticHandler serves the embedded static files, cacheable for a year
// (their URLs carry staticVersion).
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == staticVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}
