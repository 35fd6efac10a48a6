## account_form.mako: the account forms (sign in, sign up, password reset).
## Receives: title, request_id, kind (str: signin | signup | reset | newpass),
## fields (list of (name, label, input type, autocomplete)), button (str), action (str),
## values (dict: what to show again), errors (dict: field -> message), notice (str), csrf (str).
<%inherit file="base.mako"/>
<h1>${title}</h1>
% if notice:
<p class="notice" role="status">${notice}</p>
% endif
% if errors:
<div class="errors" role="alert">
  <ul>
  % for name, message in errors.items():
    <li><a href="#f-${name}">${message}</a></li>
  % endfor
  </ul>
</div>
% endif
<form method="post" action="${action}" class="account" novalidate>
  <input type="hidden" name="csrf" value="${csrf}">
  % for name, label, type, autocomplete in fields:
  <% error = errors.get(name, '') %>
  <div class="field${' invalid' if error else ''}">
    <label for="f-${name}">${label}</label>
    <input id="f-${name}" name="${name}" type="${type}" autocomplete="${autocomplete}" required
           value="${'' if type == 'password' else values.get(name, '')}"
    % if error:
           aria-invalid="true" aria-describedby="err-${name}"
    % endif
    >
    % if error:
    <p class="error" id="err-${name}">${error}</p>
    % endif
  </div>
  % endfor
  <button type="submit">${button}</button>
</form>
% if kind == 'signin':
<p><a href="/account/reset">Forgot your password?</a> &middot; New here? <a href="/account/signup">Create an account</a></p>
% elif kind == 'signup':
<p>Have an account? <a href="/account/signin">Sign in</a></p>
% endif
