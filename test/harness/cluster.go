package harness

import (
	"os"
	"path/filepath"
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

	env := &envtest.Environment{
		BinaryAssetsDirectory:    BinDir(t),
		CRDDirectoryPaths:        o.crdPaths,
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
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
	return &Cluster{Config: cfg, Client: c, Scheme: scheme, Kubeconfig: path}
}
