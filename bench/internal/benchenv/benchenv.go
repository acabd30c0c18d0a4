// Package benchenv gives the benchmark helpers the hosting settings that
// `moat serve --dev --zone <zone> --data <data>` serves with, computed by
// Moat's own configuration code, so that the records written for the peers
// (Knot's zone file) are the ones Moat answers with.
package benchenv

import (
	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/hosting"
)

// Settings returns the hosting settings of `moat serve --dev` with the
// given zone and data directory, as cmd/moat builds them.
func Settings(zone, data string) (hosting.Settings, error) {
	c, err := config.Load(config.Source{Flags: map[string]string{"dev": "true", "zone": zone, "data": data}})
	if err != nil {
		return hosting.Settings{}, err
	}
	return hosting.Settings{Zone: c.Zone, PolicyHost: c.PolicyHost, RUA: c.PublishedRUA()}, nil
}
