package pack

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/sysroot"
)

// Limits bound what a package may cost. Zero fields take the defaults.
type Limits struct {
	MaxArchive   int64         // bytes of the archive as fetched (compressed); default 256 MiB
	MaxBytes     int64         // bytes of file content once unpacked; default 256 MiB
	MaxFiles     int           // archive entries (files, dirs, links); default 10 000
	FetchTimeout time.Duration // a whole download; default 5 min
}

// Default limits.
const (
	DefaultMaxArchive   = 256 << 20
	DefaultMaxBytes     = 256 << 20
	DefaultMaxFiles     = 10000
	DefaultFetchTimeout = 5 * time.Minute
	maxNameLen          = 1024
	maxLinkHops         = 40
	headerAllowance     = 4 << 10 // stream bytes allowed per entry beyond its content (headers, padding)
)

// WithDefaults returns l with zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxArchive <= 0 {
		l.MaxArchive = DefaultMaxArchive
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.FetchTimeout <= 0 {
		l.FetchTimeout = DefaultFetchTimeout
	}
	return l
}

// CleanName checks a name inside a package and returns it cleaned
// ("./bin//x" → "bin/x"; the top is "."). It refuses empty, absolute,
// ".." and over-long names and names with NUL, control bytes or invalid
// UTF-8.
func CleanName(n string) (string, error) {
	switch {
	case n == "":
		return "", errors.New("empty name")
	case len(n) > maxNameLen:
		return "", fmt.Errorf("name over %d bytes", maxNameLen)
	case !utf8.ValidString(n):
		return "", errors.New("name is not valid UTF-8")
	case strings.HasPrefix(n, "/"):
		return "", errors.New("absolute name")
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x20 || n[i] == 0x7f {
			return "", fmt.Errorf("name holds control byte %#02x", n[i])
		}
	}
	var parts []string
	for _, p := range strings.Split(n, "/") {
		switch p {
		case "", ".":
		case "..":
			return "", errors.New(`name holds ".."`)
		default:
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

func badArchive(format string, a ...any) error {
	return apperr.New(apperr.BadRequest, "archive: "+fmt.Sprintf(format, a...))
}

// Extract unpacks the archive read from r (tar or tar.gz) into dir, a new
// empty directory of root that the caller owns (a staging dir), checks the
// tree and returns its manifest. On error, dir holds whatever was
// unpacked so far: the caller removes it. Nothing is fsynced: the caller
// syncs the tree once (sysroot.SyncTree) before moving it into place.
// The manifest's user is not checked here (see store).
func Extract(ctx context.Context, r io.Reader, root *sysroot.Root, dir string, lim Limits) (*Manifest, error) {
	t, err := Unpack(ctx, r, root, dir, lim)
	if err != nil {
		return nil, err
	}
	return t.x.check()
}

// Tree is an unpacked archive whose every entry and symlink passed the
// archive rules.
type Tree struct{ x *extractor }

// Unpack is Extract without the manifest: it unpacks and checks the
// archive by the same rules and leaves the reading of the tree to the
// caller (an OCI bundle's config.json, say).
func Unpack(ctx context.Context, r io.Reader, root *sysroot.Root, dir string, lim Limits) (*Tree, error) {
	x := &extractor{
		ctx: ctx, root: root, dir: path.Clean(dir), lim: lim.WithDefaults(),
		seen: map[string]bool{}, files: map[string]bool{}, dirs: map[string]bool{".": true},
	}
	if err := x.run(r); err != nil {
		return nil, err
	}
	if err := x.rootfsRules(); err != nil {
		return nil, err
	}
	for _, l := range x.links {
		if _, _, err := x.resolve(l); err != nil {
			return nil, badArchive("symlink %s: %v", l, err)
		}
	}
	return &Tree{x}, nil
}

// Resolve follows name inside the tree, symlinks included, and returns
// the name it ends at with its info (not following a final symlink, since
// none is left). Leaving the tree, a missing component or a symlink loop
// is an error.
func (t *Tree) Resolve(name string) (string, fs.FileInfo, error) { return t.x.resolve(name) }

// Entries is the number of archive entries unpacked; Bytes their content.
func (t *Tree) Entries() int { return t.x.entries }

// Bytes is the content unpacked, in bytes.
func (t *Tree) Bytes() int64 { return t.x.content }

type extractor struct {
	ctx      context.Context
	root     *sysroot.Root
	dir      string
	lim      Limits
	seen     map[string]bool // names given by entries
	files    map[string]bool // regular files, for hard links
	dirs     map[string]bool // directories made
	links    []string        // symlinks, resolved at the end
	rootfs   rootfsEntries   // entries under <top>/rootfs/ judged once the kind is known
	entries  int
	content  int64
	streamed int64
	zeros    int64 // zero bytes at the end of what tar read: 1024 end the archive
}

func trailingZeros(run int64, b []byte) int64 {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return int64(len(b) - 1 - i)
		}
	}
	return run + int64(len(b))
}

// countReader counts the decompressed stream against its cap and stops
// when the context ends.
type countReader struct {
	x *extractor
	r io.Reader
}

func (c *countReader) Read(p []byte) (int, error) {
	if err := c.x.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.x.streamed += int64(n)
	c.x.zeros = trailingZeros(c.x.zeros, p[:n])
	if c.x.streamed > c.x.lim.MaxBytes+int64(c.x.lim.MaxFiles+2)*headerAllowance {
		return n, errStreamCap
	}
	return n, err
}

var errStreamCap = errors.New("stream cap")

func (x *extractor) tooLarge() error {
	return apperr.New(apperr.TooLarge, fmt.Sprintf("archive: over %d bytes unpacked (the cap)", x.lim.MaxBytes))
}

func (x *extractor) run(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if len(magic) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return apperr.Wrap(apperr.BadRequest, "archive: read", err)
		}
		return badArchive("empty")
	}
	var in io.Reader = br
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return badArchive("corrupt gzip data: %v", err)
		}
		defer zr.Close()
		in = zr
	}
	tr := tar.NewReader(&countReader{x, in})
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if x.entries == 0 {
				return badArchive("no entries (not a tar archive, or empty)")
			}
			if x.zeros < 1024 { // archive/tar takes a missing end marker for the end
				return badArchive("truncated (no end-of-archive marker)")
			}
			return nil
		}
		if err != nil {
			return x.readError(err)
		}
		x.entries++
		if x.entries > x.lim.MaxFiles {
			return apperr.New(apperr.TooLarge, fmt.Sprintf("archive: more than %d entries (the cap)", x.lim.MaxFiles))
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
}

func (x *extractor) readError(err error) error {
	switch {
	case errors.Is(err, errStreamCap):
		return x.tooLarge()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apperr.Wrap(apperr.BadRequest, "archive: stopped", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badArchive("truncated")
	case errors.Is(err, tar.ErrHeader) && x.entries == 0:
		return badArchive("not a tar archive")
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return badArchive("corrupt gzip data: %v", err)
	}
	return apperr.Wrap(apperr.BadRequest, "archive: corrupt", err)
}

// host is the root-relative name of a package name.
func (x *extractor) host(name string) string {
	if name == "." {
		return x.dir
	}
	return x.dir + "/" + name
}

func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) error {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return badArchive("entry %q: %v", clip(hdr.Name), err)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return badArchive("entry %q: names the package's top", clip(hdr.Name))
	}
	if x.seen[name] {
		return badArchive("%s: given twice", name)
	}
	x.seen[name] = true
	if hdr.Mode&(0o4000|0o2000) == 0 && hdr.Mode&0o1000 != 0 && hdr.Typeflag == tar.TypeDir && inRootfs(name) {
		x.rootfs.sticky = append(x.rootfs.sticky, name) // /tmp of a rootfs: judged at the end
	} else if hdr.Mode&(0o4000|0o2000|0o1000) != 0 {
		return badArchive("%s: setuid, setgid or sticky bit (mode %o)", name, hdr.Mode&0o7777)
	}
	perm := fs.FileMode(hdr.Mode) & 0o755
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := x.parents(name); err != nil {
			return err
		}
		if _, err := x.root.MkdirAll(x.host(name), perm|0o700, 0o755, sysroot.Keep); err != nil {
			return x.fsError(name, err)
		}
		x.dirs[name] = true
	case tar.TypeReg: // archive/tar turns the old TypeRegA into TypeReg or TypeDir
		if hdr.Size < 0 || hdr.Size > x.lim.MaxBytes-x.content {
			return x.tooLarge()
		}
		x.content += hdr.Size
		if err := x.parents(name); err != nil {
			return err
		}
		f, err := x.root.Create(x.host(name), perm)
		if err != nil {
			return x.fsError(name, err)
		}
		w := &writeTracker{w: f}
		n, err := io.Copy(w, tr)
		if cerr := f.Close(); err == nil && cerr != nil {
			err, w.err = cerr, cerr
		}
		switch {
		case err != nil && err == w.err:
			return x.fsError(name, err)
		case err != nil: // reading: corrupt, truncated, over the cap
			return x.readError(err)
		}
		if n != hdr.Size {
			return badArchive("truncated")
		}
		x.files[name] = true
	case tar.TypeSymlink:
		if inRootfs(name) {
			if err := checkRootfsLink(hdr.Linkname); err != nil {
				return badArchive("symlink %s -> %q: %v", name, clip(hdr.Linkname), err)
			}
			if err := x.parents(name); err != nil {
				return err
			}
			if err := x.root.Symlink(hdr.Linkname, x.host(name)); err != nil {
				return x.fsError(name, err)
			}
			x.rootfs.links = append(x.rootfs.links, rootfsLink{name, hdr.Linkname})
			return nil
		}
		if err := checkLinkTarget(name, hdr.Linkname); err != nil {
			return badArchive("symlink %s -> %q: %v", name, clip(hdr.Linkname), err)
		}
		if err := x.parents(name); err != nil {
			return err
		}
		if err := x.root.Symlink(hdr.Linkname, x.host(name)); err != nil {
			return x.fsError(name, err)
		}
		x.links = append(x.links, name)
	case tar.TypeLink:
		target, err := CleanName(hdr.Linkname)
		if err != nil || !x.files[target] {
			return badArchive("hard link %s -> %q: not a regular file earlier in the package", name, clip(hdr.Linkname))
		}
		if err := x.parents(name); err != nil {
			return err
		}
		if err := x.root.Link(x.host(target), x.host(name)); err != nil {
			return x.fsError(name, err)
		}
		x.files[name] = true
	case tar.TypeChar, tar.TypeBlock:
		return badArchive("%s: device node refused", name)
	case tar.TypeFifo:
		return badArchive("%s: FIFO refused", name)
	default:
		return badArchive("%s: entry type %q refused", name, string(hdr.Typeflag))
	}
	return nil
}

// parents makes the missing directories above name.
func (x *extractor) parents(name string) error {
	parent := path.Dir(name)
	if x.dirs[parent] {
		return nil
	}
	if _, err := x.root.MkdirAll(x.host(parent), 0o755, 0o755, sysroot.Keep); err != nil {
		return x.fsError(parent, err)
	}
	for p := parent; p != "."; p = path.Dir(p) {
		x.dirs[p] = true
	}
	return nil
}

// fsError classifies a failure to write name: a full disk is no_space,
// a clash with the archive's own entries (a file where a directory is
// needed, a path through a symlink) is the archive's fault.
func (x *extractor) fsError(name string, err error) error {
	if errors.Is(err, sysroot.ErrSymlink) || errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, syscall.ENAMETOOLONG) || errors.Is(err, syscall.EISDIR) {
		return apperr.Wrap(apperr.BadRequest, "archive: "+name, err)
	}
	return apperr.Wrap(apperr.Internal, "unpack "+name, err)
}

// checkLinkTarget refuses a symlink target that is absolute or climbs
// out of the package read as a path from the link's directory. Links
// through other links are checked after extraction (resolve).
func checkLinkTarget(name, target string) error {
	switch {
	case target == "":
		return errors.New("empty target")
	case len(target) > maxNameLen:
		return errors.New("target too long")
	case strings.HasPrefix(target, "/"):
		return errors.New("absolute target")
	case strings.ContainsFunc(target, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("target holds a control byte")
	}
	depth := strings.Count(name, "/") // directories above the link
	for _, p := range strings.Split(target, "/") {
		switch p {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return errors.New("points out of the package")
			}
		default:
			depth++
		}
	}
	return nil
}

// resolve follows name inside the tree, symlinks included, and returns
// the package name it ends at. A step out of the tree, an absolute link,
// a missing component or more than maxLinkHops links is an error.
func (x *extractor) resolve(name string) (string, fs.FileInfo, error) {
	var cur []string
	rest := strings.Split(name, "/")
	hops := 0
	var fi fs.FileInfo
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return "", nil, errors.New("points out of the package")
			}
			cur = cur[:len(cur)-1]
			continue
		}
		p := strings.Join(append(cur, c), "/")
		st, err := x.root.Lstat(x.host(p))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", nil, fmt.Errorf("%s does not exist in the package", p)
			}
			return "", nil, err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			if hops++; hops > maxLinkHops {
				return "", nil, errors.New("too many levels of symlinks")
			}
			t, err := x.root.Readlink(x.host(p))
			if err != nil {
				return "", nil, err
			}
			if strings.HasPrefix(t, "/") {
				return "", nil, errors.New("absolute symlink")
			}
			rest = append(strings.Split(t, "/"), rest...)
			continue
		}
		if len(rest) > 0 && !st.IsDir() {
			return "", nil, fmt.Errorf("%s is not a directory", p)
		}
		cur = append(cur, c)
		fi = st
	}
	if len(cur) == 0 {
		st, err := x.root.Lstat(x.dir)
		return ".", st, err
	}
	return strings.Join(cur, "/"), fi, nil
}

// Load reads the manifest of a tree unpacked earlier (the store's
// installed versions): manifest.json, or an OCI bundle's config.json, and
// checks it against the tree as Extract did.
func Load(root *sysroot.Root, dir string) (*Manifest, error) {
	return (&extractor{root: root, dir: path.Clean(dir)}).check()
}

// check reads the manifest and checks exec and workdir against the tree.
// Without manifest.json, the tree may be an OCI bundle.
func (x *extractor) check() (*Manifest, error) {
	st, err := x.root.Lstat(x.host(ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		if name, ok := x.bundleName(); ok {
			return x.bundle(name)
		}
	}
	if err != nil || !st.Mode().IsRegular() {
		return nil, badArchive("no %s (a regular file) at the top, nor an OCI bundle (<name>/%s and <name>/rootfs/)", ManifestName, BundleConfig)
	}
	data, err := x.root.ReadFile(x.host(ManifestName), MaxManifest)
	if errors.Is(err, sysroot.ErrTooLarge) {
		return nil, apperr.New(apperr.TooLarge, fmt.Sprintf("manifest: over %d bytes", MaxManifest))
	}
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, "read manifest", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, err
	}
	name, fi, err := x.resolve(m.Exec)
	switch {
	case err != nil:
		return nil, bad(`"exec" %s: %v`, m.Exec, err)
	case !fi.Mode().IsRegular():
		return nil, bad(`"exec" %s: %s is not a regular file`, m.Exec, name)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, bad(`"exec" %s: not executable (mode %v)`, m.Exec, fi.Mode().Perm())
	}
	if m.Workdir != "" {
		if _, fi, err := x.resolve(m.Workdir); err != nil || !fi.IsDir() {
			return nil, bad(`"workdir" %s: not a directory in the package`, m.Workdir)
		}
	}
	return m, nil
}

// writeTracker tells a write error from a read error in io.Copy.
type writeTracker struct {
	w   io.Writer
	err error
}

func (t *writeTracker) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}
