## books/_section_banner.mako: the books section's banner.
## Receives: what base.mako receives.
<p class="section-banner">Books: stories to read together, from board books to novels</p>
