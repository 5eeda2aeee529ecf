package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Cluster is a running kube-apiserver and etcd. There are no nodes, controllers
// or scheduler: objects are stored and admitted, nothing runs.
type Cluster struct {
	// Config reaches the API server as a cluster administrator.
	Config *rest.Config
	// Client is a controller-runtime client built from Config with the Scheme.
	Client client.Client
	// Scheme knows the built-in kinds plus those added with WithScheme.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for kubectl and signet.
	Kubeconfig string

	env *envtest.Environment
}

// ClusterOption configures StartCluster.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	crdPaths []string
	scheme   *runtime.Scheme
	flags    map[string]string
}

// WithCRDs installs the CustomResourceDefinitions in the given files or
// directories before StartCluster returns.
func WithCRDs(paths ...string) ClusterOption {
	return func(o *clusterOptions) { o.crdPaths = append(o.crdPaths, paths...) }
}

// WithScheme makes the client know the kinds registered in s, in addition to the
// built-in ones.
func WithScheme(s *runtime.Scheme) ClusterOption {
	return func(o *clusterOptions) { o.scheme = s }
}

// WithAPIServerFlag sets a kube-apiserver flag, e.g. to enable an admission plugin.
func WithAPIServerFlag(name, value string) ClusterOption {
	return func(o *clusterOptions) { o.flags[name] = value }
}

// StartCluster starts kube-apiserver and etcd for the test and stops them when
// the test ends.
func StartCluster(t testing.TB, opts ...ClusterOption) *Cluster {
	t.Helper()
	o := clusterOptions{flags: map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		Binary(t, name)
	}
	scheme := o.scheme
	if scheme == nil {
		scheme = runtime.NewScheme()
	}
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatalf("building the client scheme: %v", err)
	}

	// Certificates and data in directories of the test, not of envtest:
	// StopControlPlane and StartControlPlane then keep the API server's
	// address, certificates, users and stored objects.
	env := &envtest.Environment{
		BinaryAssetsDirectory:    BinDir(t),
		CRDDirectoryPaths:        o.crdPaths,
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	env.ControlPlane.GetAPIServer().CertDir = t.TempDir()
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: t.TempDir()}
	if len(o.flags) > 0 {
		args := env.ControlPlane.GetAPIServer().Configure()
		for k, v := range o.flags {
			args.Set(k, v)
		}
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", BinDir(t), err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping kube-apiserver and etcd: %v", err)
		}
	})

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("building a client for the test API server: %v", err)
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "signet-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("adding an administrator to the test API server: %v", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("writing a kubeconfig for the test API server: %v", err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatalf("writing the kubeconfig: %v", err)
	}
	return &Cluster{Config: cfg, Client: c, Scheme: scheme, Kubeconfig: path, env: env}
}

// AddUser provisions a user of the API server in groups and returns the
// path of a kubeconfig file for it (the API server's audit log names each
// user, so processes given distinct users can be told apart).
func (c *Cluster) AddUser(t testing.TB, name string, groups ...string) string {
	t.Helper()
	user, err := c.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		t.Fatalf("adding user %s: %v", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("writing a kubeconfig for %s: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// StopControlPlane kills kube-apiserver, then etcd (SIGKILL), as a crash of
// the control plane does; objects stay stored. (A graceful stop of
// kube-apiserver under load waits for its requests and watches well past
// envtest's 30 s.)
func (c *Cluster) StopControlPlane(t testing.TB) {
	t.Helper()
	api, etcd := c.env.ControlPlane.GetAPIServer(), c.env.ControlPlane.Etcd
	for _, p := range []struct{ name, arg string }{{"kube-apiserver", "--cert-dir=" + api.CertDir}, {"etcd", "--data-dir=" + etcd.DataDir}} {
		pid, err := findProcess(p.name, p.arg)
		if err != nil {
			t.Fatalf("finding %s: %v", p.name, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("killing %s: %v", p.name, err)
		}
	}
	// envtest reaps them and forgets them.
	if err := api.Stop(); err != nil {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	if err := etcd.Stop(); err != nil {
		t.Fatalf("stopping etcd: %v", err)
	}
}

// findProcess is the process running the binary name with arg among its
// arguments.
func findProcess(name, arg string) (int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if len(args) > 0 && filepath.Base(args[0]) == name && slices.Contains(args, arg) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no %s process with %s", name, arg)
}

// StartControlPlane starts etcd, then kube-apiserver, again after
// StopControlPlane, on the same addresses with the same certificates,
// users and objects, and returns once the API server is healthy.
func (c *Cluster) StartControlPlane(t testing.TB) {
	t.Helper()
	if err := c.env.ControlPlane.Etcd.Start(); err != nil {
		t.Fatalf("starting etcd again: %v", err)
	}
	if err := c.env.ControlPlane.GetAPIServer().Start(); err != nil {
		t.Fatalf("starting kube-apiserver again: %v", err)
	}
}
