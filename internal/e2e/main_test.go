package e2e

import (
	"testing"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// TestMain stops the throwaway PostgreSQL server, if a test started one.
func TestMain(m *testing.M) { pgtest.Main(m) }
