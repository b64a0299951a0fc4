// Package dirlock keeps a directory to one owner: the local stores lock
// their directory while they have it open.
package dirlock

import "errors"

// ErrLocked is wrapped by Lock's error when another owner holds the lock.
var ErrLocked = errors.New("directory in use")
