package senders

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/moatmail/moat/internal/dnsname"
)

// ErrCatalog means a catalogue of sending services could not be read; the
// wrapping error names the entry and the field.
var ErrCatalog = errors.New("senders: invalid catalogue")

//go:embed catalog.yaml
var builtinCatalog []byte

// Kinds of services.
const (
	KindMailbox = "mailbox" // a mail provider: its users also forward mail
	KindESP     = "esp"     // a sending platform
	KindRelay   = "relay"   // an outbound gateway
)

// Service is one sending service of the catalogue (catalog.yaml says what
// each field holds).
type Service struct {
	ID         string   `yaml:"id" json:"id"`
	Name       string   `yaml:"name" json:"name"`
	Kind       string   `yaml:"kind" json:"kind"`
	PTR        []string `yaml:"ptr" json:"-"`
	DKIM       []string `yaml:"dkim" json:"-"`
	Envelope   []string `yaml:"envelope" json:"-"`
	SPF        []string `yaml:"spf" json:"-"`
	DKIMSetup  string   `yaml:"dkim_setup" json:"-"`
	ReturnPath string   `yaml:"return_path" json:"-"`
}

// Catalog finds services by the names a source shows. It is immutable and
// safe for concurrent use.
type Catalog struct {
	services []*Service
	ptr      map[string]*Service
	dkim     map[string]*Service
	envelope map[string]*Service
	spf      map[string]*Service
}

// Builtin returns the catalogue kept in the repository (catalog.yaml).
func Builtin() (*Catalog, error) { return ParseCatalog(builtinCatalog) }

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// ParseCatalog reads a catalogue in the format of catalog.yaml. Errors
// wrap ErrCatalog and name the entry and field: an unknown key, a missing
// id or name, an unknown kind, a domain that is not a lower-case name, a
// public suffix, a domain listed by two services in the same field (matching would be
// ambiguous), a duplicate id.
func ParseCatalog(data []byte) (*Catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var list []*Service
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalog, err)
	}
	c := &Catalog{ptr: map[string]*Service{}, dkim: map[string]*Service{}, envelope: map[string]*Service{}, spf: map[string]*Service{}}
	ids := map[string]bool{}
	for i, s := range list {
		if s == nil {
			return nil, fmt.Errorf("%w: entry %d is empty", ErrCatalog, i+1)
		}
		where := fmt.Sprintf("entry %d (%q)", i+1, s.ID)
		if !idRE.MatchString(s.ID) {
			return nil, fmt.Errorf("%w: %s: id: want lower-case letters, digits and hyphens", ErrCatalog, where)
		}
		if ids[s.ID] {
			return nil, fmt.Errorf("%w: %s: id listed twice", ErrCatalog, where)
		}
		ids[s.ID] = true
		if strings.TrimSpace(s.Name) == "" {
			return nil, fmt.Errorf("%w: %s: name is empty", ErrCatalog, where)
		}
		switch s.Kind {
		case KindMailbox, KindESP, KindRelay:
		default:
			return nil, fmt.Errorf("%w: %s: kind %q: want mailbox, esp or relay", ErrCatalog, where, s.Kind)
		}
		for _, f := range []struct {
			name string
			list []string
			m    map[string]*Service
		}{{"ptr", s.PTR, c.ptr}, {"dkim", s.DKIM, c.dkim}, {"envelope", s.Envelope, c.envelope}, {"spf", s.SPF, c.spf}} {
			for _, d := range f.list {
				if err := dnsname.Check(d, dnsname.Owner); err != nil || d != strings.ToLower(d) {
					return nil, fmt.Errorf("%w: %s: %s: %q is not a lower-case domain name", ErrCatalog, where, f.name, d)
				}
				// Matching never goes above an organizational domain.
				if dnsname.OrgDomain("x."+d) == "x."+d {
					return nil, fmt.Errorf("%w: %s: %s: %s is a public suffix (or a single label): list names under it", ErrCatalog, where, f.name, d)
				}
				if o := f.m[d]; o != nil {
					return nil, fmt.Errorf("%w: %s: %s: %s is listed by %q too", ErrCatalog, where, f.name, d, o.ID)
				}
				f.m[d] = s
			}
		}
		c.services = append(c.services, s)
	}
	return c, nil
}

// Services returns the services in catalogue order.
func (c *Catalog) Services() []*Service { return c.services }

// ByID returns the service of id, or nil.
func (c *Catalog) ByID(id string) *Service {
	for _, s := range c.services {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// lookup finds the entry of m that is name or the nearest parent of it,
// looking no higher than name's organizational domain (RFC 7489 §3.2, by
// the Public Suffix List): "co.uk" never matches.
func lookup(m map[string]*Service, name string) *Service {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" {
		return nil
	}
	org := dnsname.OrgDomain(name)
	for {
		if s := m[name]; s != nil {
			return s
		}
		if name == org {
			return nil
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return nil
		}
		name = name[i+1:]
	}
}

// ByPTR returns the service whose sending hosts have the reverse DNS
// name host, or nil.
func (c *Catalog) ByPTR(host string) *Service { return lookup(c.ptr, host) }

// ByDKIM returns the service that signs with DKIM domain d itself, or nil.
func (c *Catalog) ByDKIM(d string) *Service { return lookup(c.dkim, d) }

// ByEnvelope returns the service whose own envelope-from domain is d, or
// nil.
func (c *Catalog) ByEnvelope(d string) *Service { return lookup(c.envelope, d) }

// ByInclude returns the service an SPF include target belongs to, or nil.
func (c *Catalog) ByInclude(target string) *Service { return lookup(c.spf, target) }
