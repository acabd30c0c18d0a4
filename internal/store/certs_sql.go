package store

import (
	"context"
	"fmt"
	"time"
)

// CertificateExpiries implements Store.
func (s *sqlStore) CertificateExpiries(ctx context.Context) ([]time.Time, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT expires FROM certificates`)
	if err != nil {
		return nil, fmt.Errorf("store: certificate expiries: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(timeCol{&t}); err != nil {
			return nil, fmt.Errorf("store: certificate expiries: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: certificate expiries: %w", err)
	}
	return out, nil
}
