package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

func testKVPutGet(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	big := make([]byte, 200<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	values := map[string][]byte{
		"certificates/acme/example.com/example.com.crt": []byte("-----BEGIN CERTIFICATE-----\n"),
		"binary":          {0, 1, 2, 0xff, 0, '\n', '%', '_'},
		"empty":           {},
		"big":             big,
		"with space/and%": []byte("x"),
	}
	for k, v := range values {
		if err := s.Put(ctx, k, v); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	for k, want := range values {
		got, err := s.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Get(%q) = %d bytes %.20q, want %d bytes %.20q", k, len(got), got, len(want), want)
		}
	}
	// Replace.
	if err := s.Put(ctx, "binary", []byte("new")); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	if got, err := s.Get(ctx, "binary"); err != nil || string(got) != "new" {
		t.Errorf("Get after replace = %q, %v; want \"new\"", got, err)
	}
	_, err := s.Get(ctx, "missing/key")
	wantErr(t, "Get(missing)", err, store.ErrNotFound, "missing/key")
	// A prefix of a key is not a key.
	_, err = s.Get(ctx, "certificates")
	wantErr(t, "Get(directory)", err, store.ErrNotFound, "certificates")
}

func testKVStat(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	if err := s.Put(ctx, "a/b", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	ki, err := s.Stat(ctx, "a/b")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if ki.Key != "a/b" || ki.Size != 5 {
		t.Errorf("Stat = %+v, want key a/b size 5", ki)
	}
	if ki.Modified.Location() != time.UTC {
		t.Errorf("Stat Modified %v is not UTC", ki.Modified)
	}
	// A sanity bound, not a timing check: the clock that stamps the key may
	// be the database server's.
	if d := time.Since(ki.Modified); d < -time.Minute || d > time.Minute {
		t.Errorf("Stat Modified = %v, not within a minute of now", ki.Modified)
	}
	if err := s.Put(ctx, "a/b", nil); err != nil {
		t.Fatal(err)
	}
	ki2, err := s.Stat(ctx, "a/b")
	if err != nil {
		t.Fatalf("Stat after replace: %v", err)
	}
	if ki2.Size != 0 || ki2.Modified.Before(ki.Modified) {
		t.Errorf("Stat after replacing with an empty value = %+v, want size 0 and Modified not before %v", ki2, ki.Modified)
	}
	_, err = s.Stat(ctx, "a")
	wantErr(t, "Stat(directory)", err, store.ErrNotFound, `"a"`)
}

// kvTree is the key set of the List and Delete tests: nested directories, a
// key that is also a directory ("certs"), neighbours that share a prefix
// without the slash ("certsx", "cert"), and LIKE metacharacters.
func kvTree() []string {
	return []string{
		"certs/a.example/a.crt",
		"certs/a.example/a.key",
		"certs/b.example/b.crt",
		"certs/c",
		"certs",
		"certsx/y",
		"cert/z",
		"ocsp/a",
		"x%_/y",
		"x!/y",
	}
}

func putTree(t *testing.T, s store.Store) {
	t.Helper()
	for _, k := range kvTree() {
		if err := s.Put(t.Context(), k, []byte(k)); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
}

func testKVList(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	putTree(t, s)
	tests := []struct {
		prefix    string
		recursive bool
		want      []string // nil: ErrNotFound
	}{
		{"certs", false, []string{"certs/a.example", "certs/b.example", "certs/c"}},
		{"certs/", false, []string{"certs/a.example", "certs/b.example", "certs/c"}},
		{"certs", true, []string{"certs/a.example/a.crt", "certs/a.example/a.key", "certs/b.example/b.crt", "certs/c"}},
		{"certs/a.example", false, []string{"certs/a.example/a.crt", "certs/a.example/a.key"}},
		{"certs/a.example", true, []string{"certs/a.example/a.crt", "certs/a.example/a.key"}},
		{"x%_", true, []string{"x%_/y"}},
		{"x", true, nil},
		{"x%", true, nil},
		{"cert", false, []string{"cert/z"}},
		{"certs/c", false, nil}, // a key, not a directory
		{"nothing", true, nil},
		{"nothing", false, nil},
		{"", false, []string{"cert", "certs", "certsx", "ocsp", "x!", "x%_"}},
		{"", true, []string{"cert/z", "certs", "certs/a.example/a.crt", "certs/a.example/a.key", "certs/b.example/b.crt", "certs/c", "certsx/y", "ocsp/a", "x!/y", "x%_/y"}},
	}
	for _, tc := range tests {
		got, err := s.List(t.Context(), tc.prefix, tc.recursive)
		if tc.want == nil {
			if len(got) != 0 {
				t.Errorf("List(%q, %v) = %q, want none", tc.prefix, tc.recursive, got)
			}
			wantErr(t, "List("+tc.prefix+")", err, store.ErrNotFound, "")
			continue
		}
		if err != nil {
			t.Errorf("List(%q, %v): %v", tc.prefix, tc.recursive, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v) = %q, want %q", tc.prefix, tc.recursive, got, tc.want)
		}
	}
}

func testKVDelete(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	putTree(t, s)
	has := func(want ...string) {
		t.Helper()
		got, err := s.List(ctx, "", true)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("keys = %q, want %q", got, want)
		}
	}
	// A directory: its keys go, the key of the same name and neighbours stay.
	if err := s.Delete(ctx, "certs/a.example"); err != nil {
		t.Fatalf("Delete(certs/a.example): %v", err)
	}
	has("cert/z", "certs", "certs/b.example/b.crt", "certs/c", "certsx/y", "ocsp/a", "x!/y", "x%_/y")
	// A single key.
	if err := s.Delete(ctx, "certs/c"); err != nil {
		t.Fatalf("Delete(certs/c): %v", err)
	}
	has("cert/z", "certs", "certs/b.example/b.crt", "certsx/y", "ocsp/a", "x!/y", "x%_/y")
	// A key that is also a directory: both.
	if err := s.Delete(ctx, "certs"); err != nil {
		t.Fatalf("Delete(certs): %v", err)
	}
	has("cert/z", "certsx/y", "ocsp/a", "x!/y", "x%_/y")
	// LIKE metacharacters are not patterns.
	err := s.Delete(ctx, "x%")
	wantErr(t, "Delete(x%)", err, store.ErrNotFound, "x%")
	err = s.Delete(ctx, "certs")
	wantErr(t, "second Delete(certs)", err, store.ErrNotFound, "certs")
	has("cert/z", "certsx/y", "ocsp/a", "x!/y", "x%_/y")
	if _, err := s.Get(ctx, "certs/b.example/b.crt"); err == nil {
		t.Error("Get of a deleted key succeeded")
	}
}
