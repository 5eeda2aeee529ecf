package server

import (
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
)

// signet --help lists the cluster commands as signet-server has them.
func TestClusterCommandsListedAsTheyAre(t *testing.T) {
	real := map[string]string{}
	for _, c := range Commands() {
		real[strings.TrimSpace(c.Annotations[cli.ParentAnnotation]+" "+c.Name())] = c.Short
	}
	if len(real) != len(cli.ClusterCommands) {
		t.Errorf("signet-server has %d cluster commands, signet lists %d", len(real), len(cli.ClusterCommands))
	}
	for _, c := range cli.ClusterCommands {
		path := strings.TrimSpace(c.Parent + " " + c.Name)
		if real[path] != c.Short {
			t.Errorf("signet lists %s as %q; signet-server has %q", path, c.Short, real[path])
		}
	}
}
