package app

import (
	"github.com/basinix/basinix/internal/redact"
)

// NewRedactor returns the redactor of what `basinix serve` sends out (to
// GitHub, to web clients, to its log): the App's secrets as LoadSecrets
// loaded them, and every GitHub token or private key.
func NewRedactor(cfg Config) *redact.Redactor { return redact.New(cfg.Secrets()...) }
