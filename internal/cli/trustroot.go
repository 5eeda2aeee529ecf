package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	sgtuf "github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/listener"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/internal/trustspec"
)

func newTrustRootCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trustroot",
		Short: "Build, inspect and serve Sigstore trust roots (for air-gapped clusters)",
	}
	cmd.AddCommand(newTrustRootCreateCommand(), newTrustRootInspectCommand(), newTrustRootServeCommand())
	return cmd
}

type trustRootCreateOptions struct {
	fromDir  string
	fromURL  string
	rootFile string
	out      string
	target   string
}

func newTrustRootCreateCommand() *cobra.Command {
	o := &trustRootCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create NAME (--from-dir DIR | --from-url URL)",
		Short: "Write a TrustRoot manifest holding a serialized TUF repository",
		Long: `create packs a TUF repository into a TrustRoot (spec.repository), for a
cluster with no route to any TUF mirror. The repository comes from a
directory (--from-dir, e.g. a checkout of github.com/sigstore/root-signing's
repository/repository) or is fetched from a mirror (--from-url). Either way
it is verified with a TUF client, from --root, before the manifest is
written: a repository that does not verify, or whose metadata has expired,
is refused. Rebuild and re-apply it before its TUF metadata expires
(the manifest says when).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return WithExitCode(ExitUndecided, err)
			}
			return o.run(cmd.Context(), args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.fromDir, "from-dir", "", "TUF repository directory (metadata at the top, targets under targets/)")
	f.StringVar(&o.fromURL, "from-url", "", "TUF repository (mirror) URL to fetch the metadata and trusted root from")
	f.StringVar(&o.rootFile, "root", "", "the repository's initial root.json, from a source you trust (default: the Sigstore public-good root.json built into signet)")
	f.StringVar(&o.target, "target", trust.DefaultTrustedRootTarget, "TUF target name of the trusted root")
	f.StringVarP(&o.out, "output", "o", "", "write the manifest to this file (default: standard output)")
	return cmd
}

func (o *trustRootCreateOptions) Validate() error {
	if (o.fromDir == "") == (o.fromURL == "") {
		return errors.New("give exactly one of --from-dir and --from-url")
	}
	return trust.CheckName(o.target)
}

func (o *trustRootCreateOptions) run(ctx context.Context, name string, stdout, stderr io.Writer) error {
	initial := sgtuf.DefaultRoot()
	if o.rootFile != "" {
		var err error
		if initial, err = local.ReadFile(o.rootFile, trust.MaxTUFFileSize); err != nil {
			return WithExitCode(ExitUndecided, err)
		}
	}
	var packed []byte
	var err error
	if o.fromDir != "" {
		packed, err = trust.PackDirectory(o.fromDir)
	} else {
		packed, err = fetchRepository(ctx, o.fromURL, initial, o.target)
	}
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	spec := v1alpha1.TrustRootSpec{Repository: &v1alpha1.TUFRepository{MirrorFS: packed, Root: initial}}
	if o.target != trust.DefaultTrustedRootTarget {
		spec.Repository.TrustedRootTarget = o.target
	}
	m, err := trustspec.Resolve(ctx, spec)
	if err != nil {
		return WithExitCode(ExitUndecided, fmt.Errorf("the repository does not verify: %w", err))
	}
	tr := v1alpha1.TrustRoot{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "TrustRoot"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       spec,
	}
	data, err := yaml.Marshal(struct {
		APIVersion string                 `json:"apiVersion"`
		Kind       string                 `json:"kind"`
		Metadata   map[string]string      `json:"metadata"`
		Spec       v1alpha1.TrustRootSpec `json:"spec"`
	}{tr.APIVersion, tr.Kind, map[string]string{"name": name}, tr.Spec})
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	header := fmt.Sprintf("# TrustRoot %s: trusted root %s (TUF root version %d); its TUF metadata expires %s: rebuild before then.\n",
		name, m.Version, m.RootVersion, m.MetadataExpires.Format(time.RFC3339))
	out := append([]byte(header), data...)
	if o.out == "" {
		_, err = stdout.Write(out)
	} else {
		err = os.WriteFile(o.out, out, 0o644) //nolint:gosec // G306: a manifest of public material
	}
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	fmt.Fprintf(stderr, "TrustRoot %s: %d bytes of repository, TUF metadata valid until %s\n", name, len(packed), m.MetadataExpires.Format(time.RFC3339))
	return nil
}

// fetchRepository runs a TUF client against the mirror at url and packs
// every file it fetched: the root versions after the initial one, the
// timestamp, snapshot and targets metadata and the trusted root target.
func fetchRepository(ctx context.Context, url string, initial []byte, target string) ([]byte, error) {
	m, err := trust.NewMirror(url, nil)
	if err != nil {
		return nil, err
	}
	rec := &recordingOrigin{Origin: m, files: map[string][]byte{}}
	c, err := trust.NewTUF(initial, rec, trust.WithTarget(target))
	if err != nil {
		return nil, err
	}
	if _, err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	return trust.Pack(rec.files)
}

// recordingOrigin keeps every file its Origin returned.
type recordingOrigin struct {
	trust.Origin
	mu    sync.Mutex
	files map[string][]byte
}

func (r *recordingOrigin) Fetch(ctx context.Context, name string, max int64) ([]byte, error) {
	data, err := r.Origin.Fetch(ctx, name, max)
	if err == nil {
		r.mu.Lock()
		r.files[name] = data
		r.mu.Unlock()
	}
	return data, err
}

type trustRootInspectOptions struct {
	output string
}

func newTrustRootInspectCommand() *cobra.Command {
	o := &trustRootInspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect [FILE]",
		Short: "Say what a trusted root trusts: CAs, logs, TSAs, validity, expiry",
		Long: `inspect reads a Sigstore trusted_root.json or a TrustRoot manifest (YAML or
JSON) and says what it trusts: Fulcio certificate authorities, Rekor and CT
logs, timestamp authorities, their validity windows, and when the first of
them expires. Without FILE it describes the public-good root built into
signet. A TrustRoot with a serialized repository is verified with TUF in
memory; a remote TrustRoot is fetched from its mirror.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output != "text" && o.output != "json" {
				return WithExitCode(ExitUndecided, fmt.Errorf("--output %q: want text or json", o.output))
			}
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			return o.run(cmd.Context(), file, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "text or json")
	return cmd
}

// inspection is what inspect reports.
type inspection struct {
	Source          string        `json:"source"`
	Version         string        `json:"version"`
	TUFRootVersion  int64         `json:"tufRootVersion,omitempty"`
	MetadataExpires *time.Time    `json:"metadataExpires,omitempty"`
	Summary         trust.Summary `json:"summary"`
}

func (o *trustRootInspectOptions) run(ctx context.Context, file string, stdout io.Writer) error {
	m, source, err := loadInspected(ctx, file)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	in := inspection{Source: source, Version: m.Version, TUFRootVersion: m.RootVersion, Summary: trust.Describe(m.TrustedRoot, time.Now())}
	if !m.MetadataExpires.IsZero() {
		in.MetadataExpires = &m.MetadataExpires
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	printInspection(stdout, in)
	return nil
}

func loadInspected(ctx context.Context, file string) (*trust.Material, string, error) {
	if file == "" {
		tr, err := trust.PublicGood()
		if err != nil {
			return nil, "", err
		}
		src := trust.EmbeddedSource()
		data, _ := json.Marshal(tr)
		m, err := trust.NewMaterial(data)
		if err != nil {
			return nil, "", err
		}
		m.Version = "sha256:" + src.SHA256
		return m, fmt.Sprintf("embedded public-good root (%s@%s, %s)", src.Package, src.Version, src.Date), nil
	}
	data, err := local.ReadFile(file, trust.MaxRepositorySize*2)
	if err != nil {
		return nil, "", err
	}
	var probe struct {
		Kind      string `json:"kind"`
		MediaType string `json:"mediaType"`
	}
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", file, err)
	}
	if probe.Kind == "" {
		m, err := trust.NewMaterial(data)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", file, err)
		}
		return m, file, nil
	}
	if probe.Kind != "TrustRoot" {
		return nil, "", fmt.Errorf("%s: a %s, want a trusted_root.json or a TrustRoot", file, probe.Kind)
	}
	var tr v1alpha1.TrustRoot
	if err := yaml.UnmarshalStrict(data, &tr); err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", file, err)
	}
	m, err := trustspec.Resolve(ctx, tr.Spec)
	if err != nil {
		return nil, "", fmt.Errorf("TrustRoot %s: %w", tr.Name, err)
	}
	return m, fmt.Sprintf("TrustRoot %s (%s)", tr.Name, file), nil
}

func printInspection(w io.Writer, in inspection) {
	s := in.Summary
	day := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("2006-01-02")
	}
	valid := func(ok bool) string {
		if ok {
			return "valid"
		}
		return "NOT VALID NOW"
	}
	fmt.Fprintf(w, "Source:   %s\nVersion:  %s\n", in.Source, in.Version)
	if in.TUFRootVersion > 0 {
		fmt.Fprintf(w, "TUF:      root version %d, metadata expires %s\n", in.TUFRootVersion, in.MetadataExpires.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "At:       %s\n\n", s.At.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	section := func(title string, auths []trust.Authority) {
		fmt.Fprintf(tw, "%s (%d)\n", title, len(auths))
		for _, a := range auths {
			fmt.Fprintf(tw, "  %s\t%s\t%s .. %s\t%s\n", a.URI, a.Subject, day(a.Validity.Start), day(a.Validity.End), valid(a.ValidNow))
		}
	}
	logs := func(title string, ls []trust.Log) {
		fmt.Fprintf(tw, "%s (%d)\n", title, len(ls))
		for _, l := range ls {
			id := l.LogID
			if len(id) > 16 {
				id = id[:16] + "…"
			}
			fmt.Fprintf(tw, "  %s\t%s %s\t%s .. %s\t%s\n", l.BaseURL, l.KeyType, id, day(l.Validity.Start), day(l.Validity.End), valid(l.ValidNow))
		}
	}
	section("Certificate authorities", s.CertificateAuthorities)
	logs("Transparency logs", s.TransparencyLogs)
	logs("CT logs", s.CTLogs)
	section("Timestamp authorities", s.TimestampAuthorities)
	_ = tw.Flush()
	fmt.Fprintf(w, "\nValid now: %d CAs, %d transparency logs, %d CT logs, %d TSAs\n",
		s.Current.CertificateAuthorities, s.Current.TransparencyLogs, s.Current.CTLogs, s.Current.TimestampAuthorities)
	if s.NextExpiry != nil {
		fmt.Fprintf(w, "Next expiry: %s (%s %s: %s)\n", s.NextExpiry.At.UTC().Format(time.RFC3339), s.NextExpiry.Kind, s.NextExpiry.Name, s.NextExpiry.Reason)
	} else {
		fmt.Fprintln(w, "Next expiry: none of the valid entries has an end")
	}
}

type trustRootServeOptions struct {
	listen string
}

func newTrustRootServeCommand() *cobra.Command {
	o := &trustRootServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve DIR",
		Short: "Serve a TUF repository directory over HTTP as a mirror",
		Long: `serve serves the TUF repository in DIR (metadata at the top, targets under
targets/) over plain HTTP, read-only, as a mirror for TrustRoots
(spec.remote.mirror) and signet serve --tuf-mirror. TUF metadata is signed, so
plain HTTP is safe for integrity; put TLS in front if you need privacy.
Only regular files under DIR are served; no directory listings.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args[0], cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8081", "address to serve on")
	return cmd
}

func (o *trustRootServeOptions) run(ctx context.Context, dir string, logOut io.Writer) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	if !fi.IsDir() {
		return WithExitCode(ExitUndecided, fmt.Errorf("%s is not a directory", dir))
	}
	ln, err := listener.Listen(ctx, o.listen, trustRootServeLimits().MaxConns)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	srv := listener.NewServer(listener.LimitInFlight(repositoryHandler(dir), trustRootServeInFlight, 0), trustRootServeLimits())
	fmt.Fprintf(logOut, "serving the TUF repository %s at http://%s/\n", dir, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return nil
	case err := <-errc:
		return WithExitCode(ExitUndecided, err)
	}
}

// Bounds of trustroot serve: GET and HEAD only (no body), files streamed
// from disk (a copy buffer each), a TUF client fetching a few files at once.
const trustRootServeInFlight = 64

func trustRootServeLimits() listener.Limits {
	return listener.Limits{MaxConns: 256, MaxBodyBytes: 1 << 10, WriteTimeout: time.Minute}
}

// repositoryHandler serves regular files of dir by clean relative name:
// no listings, no symbolic links out of dir, nothing that is not a regular
// file (checked before it is opened, and opened without blocking: a FIFO
// would block open, and hold an OS thread, until a writer comes), GET and
// HEAD only.
func repositoryHandler(dir string) http.Handler {
	root, err := os.OpenRoot(dir)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			http.Error(w, "repository unavailable", http.StatusInternalServerError)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if trust.CheckName(name) != nil {
			http.NotFound(w, r)
			return
		}
		f, st, ferr := trust.OpenRegular(root, filepath.FromSlash(name))
		if ferr != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, name, st.ModTime(), f)
	})
}
