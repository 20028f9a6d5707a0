// Command imagebuild writes a container image tarball without a Docker
// engine or a registry: one layer holding static binaries (and files) on a
// minimal base, in the shape of gcr.io/distroless/static:nonroot. It lets
// `make test-cluster` run the manager image on a real node where no image
// can be pulled (hack/cluster/images.sh builds and imports them):
//
//	imagebuild -tag tokensync.local/tokensync:cluster -o manager.tar \
//	    -file /manager=bin/manager -entrypoint /manager -user 65532:65532 \
//	    -ca-bundle /etc/ssl/certs/ca-certificates.crt -digest-file manager.digest
//
// The tarball is in `docker save` format, which `ctr images import` reads.
// The base has what distroless static has that a static Go binary can use:
// /etc/passwd and /etc/group with root, nobody and nonroot (65532), the home
// /home/nonroot, a world-writable /tmp and, with -ca-bundle, the CA bundle at
// /etc/ssl/certs/ca-certificates.crt with SSL_CERT_FILE pointing at it. It
// has no tzdata, /etc/os-release, /etc/services or package metadata. Every
// timestamp is zero, so the same inputs give the same digest.
//
// It lives in its own module so that go-containerregistry stays out of the
// manager's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const caPath = "/etc/ssl/certs/ca-certificates.crt"

// distroless static's /etc/passwd and /etc/group.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group  = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

type entry struct {
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
}

func main() {
	var files, envs multi
	tag := flag.String("tag", "", "image reference recorded in the tarball, e.g. tokensync.local/tokensync:cluster (required)")
	out := flag.String("o", "", "output tarball (required)")
	flag.Var(&files, "file", "IMAGEPATH=HOSTPATH: copy a host file into the image, mode 0755 (repeatable)")
	flag.Var(&envs, "env", "KEY=VALUE in the image config (repeatable)")
	entrypoint := flag.String("entrypoint", "", "entrypoint, one path (required)")
	user := flag.String("user", "65532:65532", "numeric UID:GID the image runs as")
	caBundle := flag.String("ca-bundle", "", "host CA bundle to install at "+caPath)
	arch := flag.String("arch", "amd64", "image architecture")
	digestFile := flag.String("digest-file", "", "write the image ID (config digest) and the manifest digest here, one per line")
	flag.Parse()
	if *tag == "" || *out == "" || *entrypoint == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*tag, *out, *entrypoint, *user, *caBundle, *arch, *digestFile, files, envs); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(tag, out, entrypoint, user, caBundle, arch, digestFile string, files, envs []string) error {
	ref, err := name.NewTag(tag, name.WeakValidation)
	if err != nil {
		return err
	}
	tree := map[string]entry{
		"/etc":          {mode: 0o755, dir: true},
		"/etc/passwd":   {mode: 0o644, data: []byte(passwd)},
		"/etc/group":    {mode: 0o644, data: []byte(group)},
		"/home":         {mode: 0o755, dir: true},
		"/home/nonroot": {mode: 0o700, dir: true, uid: 65532, gid: 65532},
		"/tmp":          {mode: 0o1777, dir: true},
	}
	env := []string{"PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if caBundle != "" {
		b, err := os.ReadFile(caBundle)
		if err != nil {
			return err
		}
		tree["/etc/ssl"] = entry{mode: 0o755, dir: true}
		tree["/etc/ssl/certs"] = entry{mode: 0o755, dir: true}
		tree[caPath] = entry{mode: 0o644, data: b}
		env = append(env, "SSL_CERT_FILE="+caPath)
	}
	for _, f := range files {
		dst, src, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(dst, "/") || strings.Count(dst, "/") != 1 {
			return fmt.Errorf("-file %q: want /NAME=HOSTPATH (files go in the image's root directory)", f)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		tree[dst] = entry{mode: 0o755, data: b}
	}
	env = append(env, envs...)

	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		b, err := tarTree(tree)
		return io.NopCloser(bytes.NewReader(b)), err
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.User = user
	cf.Config.Env = env
	cf.Config.WorkingDir = "/"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return err
	}
	if digestFile != "" {
		id, err := img.ConfigName()
		if err != nil {
			return err
		}
		dig, err := img.Digest()
		if err != nil {
			return err
		}
		if err := os.WriteFile(digestFile, []byte(id.String()+"\n"+dig.String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tarTree writes the entries in path order (parents first), owned by root
// unless said otherwise, with zero timestamps.
func tarTree(tree map[string]entry) ([]byte, error) {
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := tree[p]
		h := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: time.Unix(0, 0),
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
