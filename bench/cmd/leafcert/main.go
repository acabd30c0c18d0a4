// Command leafcert writes a leaf certificate and key for one host name,
// issued by the development CA of a Moat data directory (package devca:
// ECDSA P-256, the same kind of certificate `moat serve --dev` presents),
// so that bench/run.sh can give nginx the same certificate type as Moat.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/moatmail/moat/internal/devca"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "leafcert:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("data", "", "Moat data directory holding the development CA (required)")
	name := flag.String("name", "", "host name of the certificate (required)")
	certOut := flag.String("cert", "", "write the PEM certificate here (required)")
	keyOut := flag.String("key", "", "write the PEM PKCS #8 private key here (required)")
	flag.Parse()
	if *data == "" || *name == "" || *certOut == "" || *keyOut == "" {
		return errors.New("-data, -name, -cert and -key are required")
	}
	ca, err := devca.LoadOrCreate(*data)
	if err != nil {
		return err
	}
	leaf, err := ca.Certificate(*name)
	if err != nil {
		return err
	}
	key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		return fmt.Errorf("encoding the key of %s: %w", *name, err)
	}
	// Leaf only, as Moat sends it: the client trusts the root directly.
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	if err := os.WriteFile(*certOut, cert, 0o644); err != nil {
		return err
	}
	return os.WriteFile(*keyOut, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
}
