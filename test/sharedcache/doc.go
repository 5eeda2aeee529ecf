// Package sharedcache tests signet's shared result cache (check.SharedCache,
// signet serve --shared-cache) against the real components: Debian's
// redis-server, the distribution registry behind a request-counting proxy,
// and images signed by the real cosign. Replicas are Deciders with caches of
// their own, and signet serve processes run in this process; a test alters
// the store through a connection of its own, as anyone who can write to it
// could.
package sharedcache
