## _section_banner.mako: a banner under the header; empty for the shop as a
## whole, overridden by a section (sections/<slug>/_section_banner.mako).
## Receives: what base.mako receives.
