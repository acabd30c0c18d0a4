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
	c, err := load(zone, data)
	if err != nil {
		return hosting.Settings{}, err
	}
	return hosting.Settings{Zone: c.Zone, PolicyHost: c.PolicyHost, RUA: c.PublishedRUA()}, nil
}

// Intake returns the report intake settings of `moat serve --dev` with the
// given zone and data directory: the intake host, the mailboxes the SMTP
// intake accepts, and the size limits.
func Intake(zone, data string) (config.Intake, error) {
	c, err := load(zone, data)
	if err != nil {
		return config.Intake{}, err
	}
	return c.Intake, nil
}

func load(zone, data string) (*config.Config, error) {
	return config.Load(config.Source{Flags: map[string]string{"dev": "true", "zone": zone, "data": data}})
}
