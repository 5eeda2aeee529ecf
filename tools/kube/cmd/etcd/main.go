// Command etcd is the upstream etcd server at the version kube-apiserver uses,
// built from its pinned Go module for signet's end-to-end tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
