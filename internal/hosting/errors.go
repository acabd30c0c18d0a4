package hosting

import (
	"errors"
	"fmt"

	"github.com/moatmail/moat/internal/store"
)

// NotHostedError means that the domain a change or a look-up names is not hosted.
// It wraps store.ErrNotFound. Its message is for people, the same from
// every entry point (CLI, API); callers add their own hint.
type NotHostedError struct{ Domain string }

func (e *NotHostedError) Error() string { return fmt.Sprintf("no hosted domain %q", e.Domain) }

// Unwrap makes errors.Is(err, store.ErrNotFound) true.
func (e *NotHostedError) Unwrap() error { return store.ErrNotFound }

// AlreadyHostedError means that Add named a domain that is hosted already. It wraps
// store.ErrExists.
type AlreadyHostedError struct{ Domain string }

func (e *AlreadyHostedError) Error() string {
	return fmt.Sprintf("domain %q is already hosted", e.Domain)
}

// Unwrap makes errors.Is(err, store.ErrExists) true.
func (e *AlreadyHostedError) Unwrap() error { return store.ErrExists }

// hostingErr turns the store's not-found and exists errors about domain a
// into the errors above; others pass unchanged.
func hostingErr(a string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &NotHostedError{Domain: a}
	case errors.Is(err, store.ErrExists):
		return &AlreadyHostedError{Domain: a}
	}
	return err
}
