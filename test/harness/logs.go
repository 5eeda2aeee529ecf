package harness

import (
	"io"
	"log"

	"golang.org/x/crypto/bcrypt"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// htpasswdLine returns an htpasswd entry for user with a bcrypt-hashed password.
func htpasswdLine(user, password string) string {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err) // only for passwords over 72 bytes, which tests do not use
	}
	return user + ":" + string(hash) + "\n"
}
