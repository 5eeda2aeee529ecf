package convert

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/parser"

	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
)

// ImageValidatingPolicy image references. Kyverno matches
// matchImageReferences globs (github.com/gobwas/glob without separators:
// "*" any run of characters, "/" included; "?", "[...]", "{a,b}" and "\"
// special) against the image as the pod spells it: "nginx",
// "ghcr.io/org/app:v1", "ghcr.io/org/app@sha256:...". With mutateDigest a
// tag reference is first rewritten to the full name with its tag and
// digest (docker.io/org/app:v1@sha256:..., Docker Hub named docker.io
// without library/). Either way a pattern selects the same repositories in
// signet when it names its registry explicitly (not Docker Hub under
// another name), ends in "*", and does not depend on the tag or digest:
// those are translated, the others refused.

// ivDialect is what translate needs: a registry always given, the tag or
// digest after the name, Docker Hub as docker.io without library/.
var ivDialect = dialect{dockerHost: "docker.io", hubAmbiguous: true, suffix: suffixTagOrDigest,
	subject: "the reference as the pod spells it, with its tag or digest"}

// ivGlob translates one Kyverno glob. dockerHub reports a pattern that
// selects Docker Hub repositories (which Kyverno misses in some spellings:
// see ivImages).
func ivGlob(pat string) (globs []string, dead, dockerHub bool, reason string) {
	if strings.ContainsAny(pat, `?[]{}\`) {
		return nil, false, false, `it uses glob syntax signet has no equivalent for ("?", "[...]", "{a,b}", "\")`
	}
	if strings.Trim(pat, "*") == "" {
		return []string{"**"}, false, false, ""
	}
	if strings.IndexFunc(pat, func(r rune) bool { return !strings.ContainsRune(ivRefChars, r) }) >= 0 {
		return nil, true, false, "" // a character no image reference holds
	}
	host, _, found := strings.Cut(pat, "/")
	switch {
	case !found || strings.Contains(host, "*"):
		return nil, false, false, "its registry part is not a plain registry name: Kyverno compares the reference as the pod spells it, so it would select short Docker Hub names (nginx, org/app) only in some spellings"
	case !validHost(strings.ToLower(host)):
		return nil, false, false, "it names Docker Hub images by a short name (no registry), which Kyverno sees only when the pod spells them so: signet cannot tell spellings apart"
	case ivHostReason(host) != "":
		return nil, false, false, ivHostReason(host)
	case isDockerHubName(host) && host != "docker.io":
		return nil, false, false, "Kyverno selects only references spelled with " + host + "; signet reads every spelling of Docker Hub as docker.io"
	case strings.HasSuffix(pat, ":*") && !strings.Contains(strings.TrimSuffix(pat, ":*"), "*"):
		return ivAnyTag(strings.TrimSuffix(pat, ":*"), host)
	case !strings.HasSuffix(pat, "*"):
		return nil, false, false, "it ends without a wildcard, so whether it matches depends on how the pod spells the tag (Kyverno also sees references without one)"
	}
	globs, dead, reason = translate(starTokens(pat), ivDialect)
	for _, g := range globs {
		if err := policy.CheckGlob(g); err != nil {
			return nil, false, false, fmt.Sprintf("it translates to %q, which signet refuses: %v", g, err)
		}
	}
	return globs, dead, host == "docker.io", reason
}

// ivRefChars are the characters of image references (names, tags,
// digests), and the wildcard.
const ivRefChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@*"

// ivHostReason says why a registry name cannot be translated: signet
// refuses it, or reads it as another spelling (Kyverno compares the
// spelling).
func ivHostReason(host string) string {
	canonical, err := reference.CanonicalHost(host)
	switch {
	case err != nil:
		return "signet refuses its registry name: " + err.Error()
	case canonical != host:
		return "Kyverno compares the registry name as spelled, and signet reads " + host + " as " + canonical + ", which the pod may spell either way"
	}
	return ""
}

// ivAnyTag translates "<repository>:*", which Kyverno matches against
// every tag reference of the repository (with mutateDigest, against the
// tag and digest it pins) and never against a reference by digest alone.
// signet verifies those too: stricter, said in a note (ivImages).
func ivAnyTag(repo, host string) (globs []string, dead, dockerHub bool, reason string) {
	path := strings.TrimPrefix(repo, host+"/")
	if strings.ContainsAny(path, "@:") || path == "" {
		return nil, false, false, "it names a tag or digest before the wildcard; signet selects repositories"
	}
	if _, err := reference.Parse(repo + ":v1"); err != nil || path != strings.ToLower(path) {
		return nil, true, false, "" // no image has such a repository
	}
	if host == "docker.io" && (!strings.Contains(path, "/") || strings.HasPrefix(path, "library/")) {
		return nil, false, false, "an official Docker Hub image, which Kyverno names docker.io/nginx or docker.io/library/nginx as the pod spells it, while signet names it docker.io/library/nginx"
	}
	g := host + "/" + path
	if err := policy.CheckGlob(g); err != nil {
		return nil, false, false, fmt.Sprintf("it translates to %q, which signet refuses: %v", g, err)
	}
	return []string{g}, false, host == "docker.io", ""
}

// ivRefExpression reduces a matchImageReferences expression to globs: one
// or more ref.startsWith("...") joined by ||. Anything else is refused
// with the reason.
func ivRefExpression(src string) ([]string, string) {
	const why = `only ref.startsWith("...") (several joined by ||) is converted; write the selection as globs`
	e, ok := celParse(src)
	if !ok {
		return nil, why
	}
	var out []string
	var walk func(e ast.Expr) bool
	walk = func(e ast.Expr) bool {
		if e.Kind() != ast.CallKind {
			return false
		}
		call := e.AsCall()
		switch {
		case call.FunctionName() == "_||_" && len(call.Args()) == 2:
			return walk(call.Args()[0]) && walk(call.Args()[1])
		case call.FunctionName() == "startsWith" && call.IsMemberFunction() && len(call.Args()) == 1 &&
			isIdent(call.Target(), "ref"):
			s, ok := stringLiteral(call.Args()[0])
			if !ok || strings.Contains(s, "*") {
				return false
			}
			out = append(out, s+"*")
			return true
		}
		return false
	}
	if !walk(e) {
		return nil, why
	}
	return out, ""
}

// maxIVExpression bounds a CEL expression the converter reads.
const maxIVExpression = 8 << 10

// celParse parses CEL without expanding macros (all, map and exists stay
// calls), as written.
func celParse(src string) (ast.Expr, bool) {
	if len(src) > maxIVExpression {
		return nil, false
	}
	p, err := parser.NewParser(parser.MaxRecursionDepth(64), parser.ExpressionSizeCodePointLimit(maxIVExpression))
	if err != nil {
		return nil, false
	}
	a, errs := p.Parse(common.NewTextSource(src))
	if len(errs.GetErrors()) > 0 {
		return nil, false
	}
	return a.Expr(), true
}

func isIdent(e ast.Expr, name string) bool {
	return e != nil && e.Kind() == ast.IdentKind && e.AsIdent() == name
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().Value().(string)
	return s, ok
}
