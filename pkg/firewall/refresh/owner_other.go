//go:build !unix

package refresh

import (
	"context"
	"errors"
	"os"
)

func chownLikeDir(*os.File, string) error { return nil }

// LockDir is not available on this platform.
func LockDir(context.Context, string) (func(), error) {
	return nil, errors.New("lock state_dir: not supported on this platform")
}
