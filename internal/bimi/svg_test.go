package bimi

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"strings"
	"testing"
)

type wantProblem struct {
	severity, text string
}

// checkProblems fails unless got holds exactly one problem per want, each
// with the severity and a message containing the text.
func checkProblems(t *testing.T, name string, got []Problem, want []wantProblem) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, p := range got {
			if !used[i] && p.Severity == w.severity && strings.Contains(p.Message, w.text) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("%s: no %s containing %q in %+v", name, w.severity, w.text, got)
		}
	}
	for i, p := range got {
		if !used[i] {
			t.Errorf("%s: unexpected %s %q", name, p.Severity, p.Message)
		}
	}
}

func TestCheckSVGFixtures(t *testing.T) {
	t.Parallel()
	tests := map[string][]wantProblem{
		"good-tiny-ps.svg":        nil,
		"missing-baseprofile.svg": {{"error", `no baseProfile attribute`}},
		"script.svg": {
			{"error", "<script> element at line 3"},
			{"error", "<rect onclick=...> at line 4: event handler"},
		},
		"external-href.svg": {
			{"error", `<use xlink:href="https://cdn.example.net/sprite.svg#logo"> at line 3: external reference`},
			{"error", "<rect style> at line 4 references url(https://tracker.example.net/p.svg#x)"},
		},
		"raster-image.svg": {
			{"error", "<image> element at line 3: embedded (raster) images"},
			{"error", `<image xlink:href="data:image/png`},
		},
		"animated.svg": {{"error", "<animate> element at line 4: animation"}},
		"root-xy-no-title.svg": {
			{"error", `x="0"`},
			{"error", `y="0"`},
			{"error", "no <title> element as a child of <svg>"},
			{"warning", "200x100, not square"},
		},
		"javascript-link.svg": {{"error", "<a xlink:href=...> at line 3 holds a javascript: URI"}},
		"svg-1.1.svg": {
			{"error", `version="1.1", want "1.2"`},
			{"error", `baseProfile="full", want "tiny-ps"`},
		},
		"malformed.svg": {{"error", "not well-formed XML: line 4"}},
		"entities.svg": {
			{"error", "declares entities"},
			{"error", "not well-formed XML: line 4"},
		},
	}
	for name, want := range tests {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		checkProblems(t, name, CheckSVG(data), want)
	}
}

func TestCheckSVGSizeAndForms(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/good-tiny-ps.svg")
	if err != nil {
		t.Fatal(err)
	}
	// Too big: the good document padded with a comment past 32 KiB.
	big := bytes.Replace(good, []byte("<title>"), []byte("<!--"+strings.Repeat("x", MaxSVGSize)+"--><title>"), 1)
	checkProblems(t, "padded", CheckSVG(big), []wantProblem{{"error", fmt.Sprintf("size %d bytes is over the 32 KiB", len(big))}})

	// SVGZ: the same rules after decompression.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(good)
	zw.Close()
	checkProblems(t, "svgz", CheckSVG(zb.Bytes()), nil)
	checkProblems(t, "bad gzip", CheckSVG([]byte{0x1f, 0x8b, 0, 0}), []wantProblem{{"error", "SVGZ"}})

	cases := map[string]struct {
		doc  string
		want []wantProblem
	}{
		"empty":        {"", []wantProblem{{"error", "empty document"}}},
		"not svg":      {`<html><title>x</title></html>`, []wantProblem{{"error", "root element is <html>"}}},
		"no namespace": {`<svg version="1.2" baseProfile="tiny-ps" viewBox="0 0 1 1"><title>x</title></svg>`, []wantProblem{{"error", "not in the SVG namespace"}}},
		"no viewBox":   {`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps"><title>x</title></svg>`, []wantProblem{{"warning", "no viewBox"}}},
		"bad viewBox":  {`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 a 1"><title>x</title></svg>`, []wantProblem{{"error", "not numeric"}}},
		"empty title":  {`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0,0,5,5"><title> </title></svg>`, []wantProblem{{"warning", "<title> element is empty"}}},
		"style import": {`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 5 5"><title>x</title><style>@import "https://e.example/a.css";</style></svg>`, []wantProblem{{"error", "<style> at line 1 uses @import"}}},
		"plain href":   {`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 5 5"><title>x</title><use href="http://e.example/a.svg"/></svg>`, []wantProblem{{"error", `<use href="http://e.example/a.svg">`}}},
		"two roots":    {`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 5 5"><title>x</title></svg><svg/>`, []wantProblem{{"error", "second root element <svg>"}}},
		"latin1":       {`<?xml version="1.0" encoding="ISO-8859-1"?><svg/>`, []wantProblem{{"error", "only UTF-8"}}},
		"deep":         {`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 5 5"><title>x</title>` + strings.Repeat("<g>", 300) + strings.Repeat("</g>", 300) + `</svg>`, []wantProblem{{"error", "nested deeper than 256"}}},
	}
	for name, tc := range cases {
		checkProblems(t, name, CheckSVG([]byte(tc.doc)), tc.want)
	}
}

func FuzzCheckSVG(f *testing.F) {
	for _, name := range []string{"good-tiny-ps.svg", "script.svg", "external-href.svg", "entities.svg"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 1 1"><title>t</title></svg>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range CheckSVG(data) {
			if p.Severity != "error" && p.Severity != "warning" || p.Message == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
	})
}
