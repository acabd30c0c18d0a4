package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/moatmail/moat/internal/api"
)

// specURL is the name the OpenAPI document is compiled under.
const specURL = "https://moat.test/api/v1/openapi.json"

// spec is the OpenAPI document, compiled for validating answers.
type spec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mux      *http.ServeMux // "METHOD pattern" of every route, to find a request's route

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // by JSON pointer
	seen    map[string]map[int]bool       // route → statuses validated
}

// loadSpec reads the document the API serves, which must be the file.
func loadSpec(t testing.TB, e *env) *spec {
	t.Helper()
	res, err := http.Get(e.url + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !bytes.Equal(buf.Bytes(), file) {
		t.Fatalf("GET /api/v1/openapi.json: %d, %d bytes; want 200 and openapi.json's %d bytes", res.StatusCode, buf.Len(), len(file))
	}
	return newSpec(t, file)
}

func newSpec(t testing.TB, file []byte) *spec {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(specURL, doc); err != nil {
		t.Fatal(err)
	}
	s := &spec{doc: doc.(map[string]any), compiler: c, mux: http.NewServeMux(),
		schemas: map[string]*jsonschema.Schema{}, seen: map[string]map[int]bool{}}
	for _, rt := range api.Routes() {
		s.mux.Handle(rt.Method+" "+rt.Pattern, http.NotFoundHandler())
	}
	return s
}

// ptr escapes a JSON pointer token.
func ptr(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// at returns the value at a JSON pointer ("#/a/b") of the document.
func (s *spec) at(pointer string) (any, bool) {
	var v any = s.doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return v, true
}

// schema compiles (once) the schema at pointer.
func (s *spec) schema(pointer string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.schemas[pointer]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(specURL + pointer)
	if err != nil {
		return nil, err
	}
	s.schemas[pointer] = sch
	return sch, nil
}

// response returns the pointer of the documented response of an
// operation for status, its $ref followed.
func (s *spec) response(opPointer string, status int) (string, bool) {
	p := opPointer + "/responses/" + strconv.Itoa(status)
	v, ok := s.at(p)
	if !ok {
		return "", false
	}
	if ref, ok := v.(map[string]any)["$ref"].(string); ok {
		return ref, true
	}
	return p, true
}

// validate checks an answer against the document: its status documented
// for the operation, its media type documented, its body valid for the
// schema.
func (s *spec) validate(r *http.Request, res resp) error {
	_, pattern := s.mux.Handler(r)
	var route string
	var respPointer string
	if pattern == "" {
		// No route of this method: 404 for an unknown path, 405 for a known
		// one, as the shared responses describe.
		name := map[int]string{http.StatusNotFound: "NotFound", http.StatusMethodNotAllowed: "MethodNotAllowed",
			http.StatusUnauthorized: "Unauthorized"}[res.status]
		if name == "" {
			return fmt.Errorf("status %d for a request that no route takes", res.status)
		}
		if res.status == http.StatusMethodNotAllowed && res.header.Get("Allow") == "" {
			return fmt.Errorf("405 without Allow")
		}
		respPointer = "#/components/responses/" + name
		route = "(none)"
	} else {
		method, path, _ := strings.Cut(pattern, " ")
		opPointer := "#/paths/" + ptr(path) + "/" + strings.ToLower(method)
		var ok bool
		if respPointer, ok = s.response(opPointer, res.status); !ok {
			return fmt.Errorf("status %d is not documented for %s", res.status, pattern)
		}
		route = pattern
	}
	s.mu.Lock()
	if s.seen[route] == nil {
		s.seen[route] = map[int]bool{}
	}
	s.seen[route][res.status] = true
	s.mu.Unlock()

	content, hasContent := s.at(respPointer + "/content")
	if !hasContent {
		if len(res.body) != 0 {
			return fmt.Errorf("a body where none is documented")
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(res.header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("Content-Type %q: %w", res.header.Get("Content-Type"), err)
	}
	if _, ok := content.(map[string]any)[mt]; !ok {
		return fmt.Errorf("media type %s is not documented", mt)
	}
	if mt != "application/json" {
		return nil // the raw bytes of a report
	}
	sch, err := s.schema(respPointer + "/content/" + ptr(mt) + "/schema")
	if err != nil {
		return fmt.Errorf("compiling the schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(res.body))
	if err != nil {
		return fmt.Errorf("the body is not JSON: %w", err)
	}
	return sch.Validate(inst)
}

// TestOpenAPIDescribesEveryRoute checks the document against the route
// table: every route described (with its permission and path parameters),
// every described operation a route, every $ref resolvable.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	s := newSpec(t, file)
	if v, _ := s.at("#/openapi"); v != "3.1.0" {
		t.Errorf("openapi: %v, want 3.1.0", v)
	}
	routes := map[string]api.Route{}
	for _, rt := range api.Routes() {
		key := rt.Method + " " + rt.Pattern
		if _, dup := routes[key]; dup {
			t.Errorf("route %s twice in the table", key)
		}
		routes[key] = rt
	}
	described := map[string]bool{}
	paths, _ := s.at("#/paths")
	for path, item := range paths.(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			described[key] = true
			rt, ok := routes[key]
			if !ok {
				t.Errorf("%s is described but not a route", key)
				continue
			}
			perm := op.(map[string]any)["x-moat-permission"]
			if want := cmpPerm(rt.Perm); perm != want {
				t.Errorf("%s: x-moat-permission %v, the route wants %q", key, perm, want)
			}
			// Every {param} of the path is declared.
			var declared []string
			for _, list := range []any{item.(map[string]any)["parameters"], op.(map[string]any)["parameters"]} {
				l, _ := list.([]any)
				for _, p := range l {
					ref := p.(map[string]any)["$ref"].(string)
					pv, ok := s.at(ref)
					if !ok {
						t.Errorf("%s: parameter %s does not resolve", key, ref)
						continue
					}
					if pv.(map[string]any)["in"] == "path" {
						declared = append(declared, pv.(map[string]any)["name"].(string))
					}
				}
			}
			var want []string
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") {
					want = append(want, strings.Trim(seg, "{}"))
				}
			}
			slices.Sort(declared)
			slices.Sort(want)
			if !slices.Equal(declared, want) {
				t.Errorf("%s: path parameters declared %v, the path has %v", key, declared, want)
			}
			if _, ok := op.(map[string]any)["responses"].(map[string]any); !ok {
				t.Errorf("%s: no responses", key)
			}
		}
	}
	for key := range routes {
		if !described[key] {
			t.Errorf("route %s is not described in openapi.json", key)
		}
	}
	// Every $ref resolves, and every schema compiles.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := s.at(ref); !ok {
					t.Errorf("%s: $ref %s does not resolve", at, ref)
				}
			}
			for k, x := range v {
				walk(x, at+"/"+ptr(k))
			}
		case []any:
			for i, x := range v {
				walk(x, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(s.doc, "#")
	schemas, _ := s.at("#/components/schemas")
	for name := range schemas.(map[string]any) {
		if _, err := s.schema("#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	t.Logf("%d routes, %d described operations", len(routes), len(described))
}

func cmpPerm(perm string) string {
	if perm == "" {
		return "none"
	}
	return perm
}

// TestOpenAPIValidatorRejects makes sure the validator is not vacuous: an
// answer that breaks its schema, and an undocumented status, fail.
func TestOpenAPIValidatorRejects(t *testing.T) {
	t.Parallel()
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	s := newSpec(t, file)
	r, _ := http.NewRequest("GET", "http://x/api/v1/orgs", nil)
	h := http.Header{"Content-Type": {"application/json"}}
	good, _ := json.Marshal(map[string]any{"orgs": []any{map[string]any{"id": 1, "name": "a", "display_name": "A", "parent_id": nil, "created_at": "2026-01-01T00:00:00Z"}}})
	if err := s.validate(r, resp{status: 200, header: h, body: good}); err != nil {
		t.Errorf("a good answer fails: %v", err)
	}
	for name, body := range map[string]string{
		"missing field": `{"orgs":[{"id":1,"name":"a","display_name":"A","created_at":"2026-01-01T00:00:00Z"}]}`,
		"extra field":   `{"orgs":[],"secret":1}`,
		"wrong type":    `{"orgs":[{"id":"1","name":"a","display_name":"A","parent_id":null,"created_at":"2026-01-01T00:00:00Z"}]}`,
		"bad time":      `{"orgs":[{"id":1,"name":"a","display_name":"A","parent_id":null,"created_at":"yesterday"}]}`,
	} {
		if err := s.validate(r, resp{status: 200, header: h, body: []byte(body)}); err == nil {
			t.Errorf("%s: validates", name)
		}
	}
	if err := s.validate(r, resp{status: 418, header: h, body: []byte(`{}`)}); err == nil {
		t.Error("an undocumented status validates")
	}
	if err := s.validate(r, resp{status: 404, header: h, body: []byte(`{"error":{"code":"x"}}`)}); err == nil {
		t.Error("an error without message validates")
	}
}
