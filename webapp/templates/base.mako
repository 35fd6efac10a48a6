## base.mako: the page frame every page inherits.
## Receives: title (str), request_id (str), section (str or None: the shop section's slug,
## whose templates in sections/<slug>/ override these), nav (CategoryTree or None: the
## section navigation, given by the views to every page; None when it could not be
## loaded); optionally q (str) for the search box.
<%! from urllib.parse import quote %>
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/site.js" defer></script>
<script src="/static/suggest.js" defer></script>
</head>
<body class="section-${section or 'shop'}">
<a class="skip" href="#main">Skip to content</a>
<header class="site">
  <a class="logo" href="/">sleigh<span> toys &middot; books &middot; games</span></a>
  % if nav is not None:
  <nav aria-label="Sections">
    <ul>
    % for root in nav.roots:
      <li><a href="/c/${root.path}">${root.name}</a></li>
    % endfor
    </ul>
  </nav>
  % endif
  <form class="search" role="search" method="get" action="/search">
    <label for="site-q" class="visually-hidden">Search the shop</label>
    <input id="site-q" name="q" type="search" value="${context.get('q', '')}" maxlength="200"
           placeholder="Search toys, books and games" autocomplete="off"
           list="site-q-suggestions" data-suggest="/search/suggest">
    <datalist id="site-q-suggestions"></datalist>
    <button type="submit">Search</button>
  </form>
  <p class="you" id="you" data-fragment="/fragment/header"><a class="cart-link" href="/cart">Cart</a> <a href="/account">Your account</a></p>
</header>
<%include file="_section_banner.mako"/>
<main id="main" tabindex="-1">
${self.body()}
</main>
<footer class="site">
  <p>sleigh demo shop &middot; prices in US dollars &middot; request ${request_id}</p>
</footer>
</body>
</html>
