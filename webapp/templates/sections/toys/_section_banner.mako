## toys/_section_banner.mako: the toys section's banner.
## Receives: what base.mako receives.
<p class="section-banner">Toys: for play at every age</p>
