package sigstoretest

// The keyless signers of signet's tests: acme's release workflow on GitHub
// Actions, and a person at acme's own OIDC provider.
const (
	// GitHubIssuer is the OIDC issuer of GitHub Actions.
	GitHubIssuer = "https://token.actions.githubusercontent.com"
	// ReleaseWorkflow is the identity GitHub Actions gives acme/app's
	// release workflow running on main.
	ReleaseWorkflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	// MailIssuer is acme's own OIDC provider.
	MailIssuer = "https://accounts.acme.example"
	// MailSubject is an e-mail identity at MailIssuer.
	MailSubject = "release@acme.example"
)

// Release signs as ReleaseWorkflow from GitHubIssuer.
func Release() SignOptions { return SignOptions{Identity: ReleaseWorkflow, Issuer: GitHubIssuer} }

// Mail signs as MailSubject from MailIssuer.
func Mail() SignOptions { return SignOptions{Identity: MailSubject, Issuer: MailIssuer} }
