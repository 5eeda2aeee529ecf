package verify

// ReadsImageRepository reports whether an authority reads evidence from the
// image's own repository (or the request's ImageRepository): one that checks
// signatures and names no SignatureRepository. When none does, a fetcher
// need not read evidence there.
func (c *Compiled) ReadsImageRepository() bool {
	for _, a := range c.authorities {
		if a.Static == nil && a.SignatureRepository == nil {
			return true
		}
	}
	return false
}
