package conf

// MUC is the [muc] section (issue 5): the group chat service.
// TODO(muc): keys, defaults, validation.
type MUC struct {
}
