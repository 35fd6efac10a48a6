## video-games/_section_banner.mako: the video-games section's banner.
## Receives: what base.mako receives.
<p class="section-banner">Video games: rated for every age, for every console</p>
