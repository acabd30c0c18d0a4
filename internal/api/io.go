package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 1 << 20

// Page sizes of the lists.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// writeJSON answers v as JSON, indented as the CLI's --json output is, so
// that the two are byte for byte the same.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a client that went away has nobody to tell
}

// needContentType refuses a body of another media type than want with
// 415.
func needContentType(r *http.Request, want ...string) (string, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(want, strings.ToLower(mt)) {
		if ct == "" {
			ct = "none"
		}
		return "", errStatus(http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("Content-Type %s: want %s", ct, strings.Join(want, " or ")))
	}
	return strings.ToLower(mt), nil
}

// decodeJSON reads the request's JSON object into v (a pointer to a
// struct): Content-Type application/json, at most 1 MiB, no field that v
// does not have, nothing after the object.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if _, err := needContentType(r, "application/json"); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return invalid("body", "one JSON object expected; something follows it")
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field.
func jsonError(err error, v any) error {
	var (
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return invalid("body", "empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "the JSON ends too early")
	case errors.As(err, &se):
		return invalid("body", fmt.Sprintf("not JSON: %s (at byte %d)", se.Error(), se.Offset))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return invalid("body", "want a JSON object, got "+te.Value)
		}
		return invalid(field, fmt.Sprintf("want %s, got a JSON %s", jsonKind(te.Type), te.Value))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return invalid(name, "unknown field; this endpoint takes "+strings.Join(jsonFields(v), ", "))
	}
	return invalid("body", err.Error())
}

// jsonKind names a Go type in JSON's words.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a " + t.Kind().String()
}

// jsonFields lists the JSON names of the fields of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var l []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			l = append(l, name)
		}
	}
	return l
}

// queryOf returns the query parameters, refusing any not in allowed and
// any given twice.
func queryOf(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("query", "does not parse: "+err.Error())
	}
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, invalid(k, "unknown parameter; this endpoint takes none")
			}
			return nil, invalid(k, "unknown parameter; this endpoint takes "+strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, invalid(k, "given more than once")
		}
	}
	return q, nil
}

// limitOf reads ?limit=: 1 to maxLimit, defaultLimit when absent.
func limitOf(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, invalid("limit", fmt.Sprintf("%q: want 1 to %d", s, maxLimit))
	}
	return n, nil
}

// pathID reads a positive numeric id from the path.
func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalid(name, fmt.Sprintf("%q: want a positive number", s))
	}
	return id, nil
}

// pathDomain reads a hosted domain's name from the path, in stored form.
func pathDomain(r *http.Request) (string, error) {
	return hosting.LookupName(r.PathValue("name"))
}

// parseTime reads a time parameter: a period back from now ("30d", "2w",
// "12h"), a date ("2026-11-01", UTC midnight) or an RFC 3339 time.
func parseTime(field, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if u, ok := unit[s[len(s)-1]]; ok {
		if n, err := strconv.Atoi(s[:len(s)-1]); err == nil && n >= 0 && n <= 100000 {
			return now.Add(-time.Duration(n) * u), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, invalid(field, fmt.Sprintf("%q: want a period such as 30d, 2w or 12h, a date such as 2026-11-01, or an RFC 3339 time", s))
}

// cursor is the position of a list that the store pages by offset or
// that the API pages itself: opaque to clients (base64url of JSON).
type cursor struct {
	List   string `json:"l"`           // the list it belongs to
	Offset int    `json:"o,omitempty"` // rows to skip
	Time   int64  `json:"t,omitempty"` // Unix nanoseconds of the last row
	ID     int64  `json:"i,omitempty"` // id of the last row
}

func (c cursor) String() string {
	b, _ := json.Marshal(c) // strings and numbers always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursorOf reads ?after= of list; the zero cursor when absent.
func cursorOf(q url.Values, list string) (cursor, error) {
	s := q.Get("after")
	if s == "" {
		return cursor{List: list}, nil
	}
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.List != list || c.Offset < 0 {
		return cursor{}, invalid("after", "not a cursor of this list; pass the \"next\" of the previous page")
	}
	return c, nil
}

// orgOf returns the organization p acts in.
func orgOf(p *auth.Principal) (*store.Org, error) {
	if p.Org == nil {
		return nil, conflict("no_org", "you act in no organization yet; create one first (moat orgs)")
	}
	return p.Org, nil
}

// byteSize writes a size for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// nonNil returns s, or an empty slice for nil, so that JSON says [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// timePtr is t, or nil for the zero time (JSON null).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
