package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"osmanager/agent/sysroot"
)

// PasswdUsers looks accounts up in the passwd file at name (the path table's Passwd)
// of the system root, read at each call, so an account added after the
// agent started is found.
func PasswdUsers(sys *sysroot.Root, name string) UserLookup {
	return func(user string) (int, int, error) {
		data, err := sys.ReadFile(name, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("read %s: %w", name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Split(sc.Text(), ":")
			if len(f) < 7 || f[0] != user {
				continue
			}
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
				return 0, 0, fmt.Errorf("%s: bad line for %s", name, user)
			}
			return uid, gid, nil
		}
		return 0, 0, fmt.Errorf("user %s: %w", user, fs.ErrNotExist)
	}
}
