package apperr

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
)

func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, ""},
		{"plain", io.EOF, Internal},
		{"direct", New(Conflict, "x"), Conflict},
		{"wrapped", fmt.Errorf("install: %w", New(TooLarge, "x")), TooLarge},
		{"enospc bare", fmt.Errorf("write: %w", syscall.ENOSPC), NoSpace},
		{"enospc under bad_request", Wrap(BadRequest, "extract", fmt.Errorf("write: %w", syscall.ENOSPC)), NoSpace},
		{"edquot", &Error{Code: Internal, Err: syscall.EDQUOT}, NoSpace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CodeOf(tc.err); got != tc.want {
				t.Errorf("CodeOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := Wrap(Integrity, "fetch http://h/a.tar", errors.New("sha256 mismatch"))
	if got, want := e.Error(), "fetch http://h/a.tar: sha256 mismatch"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(fmt.Errorf("x: %w", e), &Error{Code: Integrity}) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(e, &Error{Code: Conflict}) {
		t.Error("errors.Is matched another code")
	}
	if got := NoSpace.HTTPStatus(); got != http.StatusInsufficientStorage {
		t.Errorf("NoSpace status %d", got)
	}
}
