package api

import (
	_ "embed" // the OpenAPI document
	"net/http"

	"github.com/moatmail/moat/internal/auth"
)

// openAPIDoc is the OpenAPI 3.1 document describing every route, parameter,
// request body and response of the API, written by hand. The tests check
// it against the route table and every answer against its schemas.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *server) openAPI(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
	return nil
}
