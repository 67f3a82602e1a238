package conf

// Archive is the [archive] section (issue 6): MAM and retention.
// TODO(archive): keys, defaults, validation.
type Archive struct {
}
