package sysroot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// MeminfoDirty returns a Root.Dirty that reads the Dirty and Writeback
// lines of a /proc/meminfo file at path.
func MeminfoDirty(path string) func() (int64, error) {
	return func() (int64, error) {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 16<<10))
		if err != nil {
			return 0, err
		}
		return parseDirty(b)
	}
}

// parseDirty sums the "Dirty:" and "Writeback:" lines (in kB) of
// /proc/meminfo's text; both must be there.
func parseDirty(b []byte) (int64, error) {
	var sum int64
	found := 0
	for line := range bytes.Lines(b) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(name) != "Dirty" && string(name) != "Writeback") {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("meminfo: %s: not a size in kB", name)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("meminfo: %s: not a size in kB", name)
		}
		sum += kb << 10
		found++
	}
	if found != 2 {
		return 0, errors.New("meminfo: no Dirty and Writeback lines")
	}
	return sum, nil
}
