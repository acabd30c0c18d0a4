// Package auth holds what Moat's dashboard and API need to know who is
// asking: password hashes (argon2id, RFC 9106), the secrets of sessions,
// API tokens and invitations (random, stored only as hashes), sign-in rate
// limits, and the principal a request acts as, with its scope and role.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Errors.
var (
	// ErrBadHash means that a stored password hash is not an argon2id hash
	// this package can read: the store is damaged or was written by
	// something else.
	ErrBadHash = errors.New("auth: unreadable password hash")
	// ErrWeakPassword means that a new password was refused; the message
	// says why.
	ErrWeakPassword = errors.New("auth: password refused")
)

// Params are the argon2id cost parameters. RFC 9106 §4 recommends, where
// memory is constrained, t=3 and m=64 MiB; p=2 here (two cores is the
// smallest server Moat runs on).
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
	SaltLen int
}

// DefaultParams are the parameters new hashes are made with: about 60 ms
// and 64 MiB per hash on the development machine. A sign-in with a hash
// made with other parameters is rehashed (Verify says so).
var DefaultParams = Params{Memory: 64 << 10, Time: 3, Threads: 2, KeyLen: 32, SaltLen: 16}

// Password length limits: NIST SP 800-63B §5.1.1.2 asks for at least 8
// characters and at least 64 allowed. The upper bound keeps a sign-in from
// hashing megabytes.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
)

// CheckPassword says why a new password is refused, or nil.
func CheckPassword(pw string) error {
	switch n := len([]rune(pw)); {
	case n < MinPasswordLen:
		return fmt.Errorf("%w: it has %d characters; use at least %d", ErrWeakPassword, n, MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("%w: it is longer than %d bytes", ErrWeakPassword, MaxPasswordLen)
	case strings.TrimSpace(pw) == "":
		return fmt.Errorf("%w: it is only white space", ErrWeakPassword)
	}
	return nil
}

// HashPassword returns the PHC-format argon2id hash of pw with p:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash> (base64 without padding).
func HashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: random salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the encoded hash, and whether
// the hash should be replaced because it was made with parameters other
// than want. The comparison takes constant time.
func VerifyPassword(encoded, pw string, want Params) (ok, rehash bool, err error) {
	p, salt, key, err := decodeHash(encoded)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxPasswordLen {
		return false, false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	ok = subtle.ConstantTimeCompare(got, key) == 1
	rehash = p.Memory != want.Memory || p.Time != want.Time || p.Threads != want.Threads || p.KeyLen != want.KeyLen
	return ok, rehash, nil
}

func decodeHash(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, fmt.Errorf("%w: not an $argon2id$ hash", ErrBadHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, fmt.Errorf("%w: version %q", ErrBadHash, parts[2])
	}
	var p Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return Params{}, nil, nil, fmt.Errorf("%w: parameter %q", ErrBadHash, kv)
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n == 0 || n > 255 {
				return Params{}, nil, nil, fmt.Errorf("%w: parameter %q", ErrBadHash, kv)
			}
			p.Threads = uint8(n)
		default:
			return Params{}, nil, nil, fmt.Errorf("%w: parameter %q", ErrBadHash, kv)
		}
	}
	// Bounds against a hash that would make a sign-in hash for minutes.
	if p.Memory < 8 || p.Memory > 1<<21 || p.Time < 1 || p.Time > 100 || p.Threads == 0 {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters out of range", ErrBadHash)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, fmt.Errorf("%w: salt", ErrBadHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return Params{}, nil, nil, fmt.Errorf("%w: hash", ErrBadHash)
	}
	p.KeyLen = uint32(len(key)) //nolint:gosec // at most 128, checked above
	p.SaltLen = len(salt)
	return p, salt, key, nil
}

// Kinds of secret, the prefix of each secret so that a leaked one is
// recognised (and secret scanners can be taught it).
const (
	KindSession    = "moat_s_"
	KindToken      = "moat_t_"
	KindInvitation = "moat_i_"
)

// NewSecret returns a new random secret of kind (256 bits, base32 without
// padding, lower case) and the hash the store keeps.
func NewSecret(kind string) (secret, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("auth: random secret: %w", err)
	}
	secret = kind + strings.ToLower(b32.EncodeToString(b))
	return secret, HashSecret(secret), nil
}

// HashSecret is what the store keeps of a secret: hex SHA-256. Secrets
// have 256 bits of entropy, so a fast hash is enough.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// GeneratePassword returns a random password: 26 characters of the RFC
// 4648 base32 alphabet (128 bits).
func GeneratePassword() string { return rand.Text() }

// b32 encodes secrets: RFC 4648 base32 without padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)
