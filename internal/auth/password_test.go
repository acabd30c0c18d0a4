package auth

import (
	"errors"
	"strings"
	"testing"
)

// fast keeps the tests quick; the encoding is the same.
var fast = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q", h)
	}
	h2, _ := HashPassword("correct horse battery", fast)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		pw     string
		want   Params
		ok, re bool
	}{
		{"correct horse battery", fast, true, false},
		{"correct horse batterY", fast, false, false},
		{"", fast, false, false},
		{"correct horse battery", DefaultParams, true, true},
		{strings.Repeat("a", MaxPasswordLen+1), fast, false, false},
	} {
		ok, re, err := VerifyPassword(h, tc.pw, tc.want)
		if err != nil || ok != tc.ok || re != tc.re {
			t.Errorf("Verify(%.20q) = %v, %v, %v; want %v, %v", tc.pw, ok, re, err, tc.ok, tc.re)
		}
	}
}

func TestVerifyBadHashes(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$c2hvcnQ",
	} {
		if _, _, err := VerifyPassword(h, "x", fast); !errors.Is(err, ErrBadHash) {
			t.Errorf("Verify(%q): %v, want ErrBadHash", h, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for pw, ok := range map[string]bool{
		"short": false, "          ": false, "ten chars!": true, "pässwörtchen": true,
		strings.Repeat("x", MaxPasswordLen+1): false,
	} {
		if err := CheckPassword(pw); (err == nil) != ok {
			t.Errorf("CheckPassword(%.20q) = %v, want ok %v", pw, err, ok)
		}
	}
	if err := CheckPassword(GeneratePassword()); err != nil {
		t.Errorf("a generated password is refused: %v", err)
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	s1, h1, err := NewSecret(KindToken)
	if err != nil {
		t.Fatal(err)
	}
	s2, h2, _ := NewSecret(KindToken)
	if !strings.HasPrefix(s1, "moat_t_") || len(s1) != len("moat_t_")+52 || s1 == s2 || h1 == h2 {
		t.Errorf("secrets %q %q", s1, s2)
	}
	if HashSecret(s1) != h1 || len(h1) != 64 {
		t.Errorf("hash %q of %q", h1, s1)
	}
}

func FuzzVerifyPassword(f *testing.F) {
	h, _ := HashPassword("seed password", fast)
	f.Add(h, "seed password")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		// Bound the cost a fuzzed hash may ask for.
		if p, _, _, err := decodeHash(encoded); err == nil && (p.Memory > 1<<12 || p.Time > 4) {
			return
		}
		ok, _, err := VerifyPassword(encoded, pw, fast)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
	})
}
