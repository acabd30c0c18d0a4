// Package api is Moat's REST API under /api/v1: hosted domains, TLS
// reports, checks, tokens, users and invitations, as JSON, for a principal
// (an API token or a signed-in session) that package web resolved. Every
// route and response shape is described by the OpenAPI 3.1 document served
// at /api/v1/openapi.json.
package api

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Error is the API's error body: {"error": {"code": "...", "message": "..."}}.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong: a stable code for programs, a message
// for people.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes the error body with status. code defaults to a name
// derived from the status ("not_found", "forbidden", ...).
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	if code == "" {
		code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="moat"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Error{Error: ErrorBody{Code: code, Message: msg}})
}
