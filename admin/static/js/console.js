// The console's own script, loaded after SQLAdmin's main.js on every page behind the login.
// - SQLAdmin's action buttons navigate by GET: here they POST, with the session's CSRF
//   token (admin/csrf.py); GET on an action URL only shows a confirmation page.
// - SQLAdmin's own forms (create, edit) get the token field; its ajax calls the header.
// - What templates did with inline scripts or handlers (refused by the Content-Security-
//   Policy, script-src 'self'): confirmations before a form is sent, flash toasts, logout.
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute('content') : '';

  function tokenField() {
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = 'csrf_token';
    input.value = token;
    return input;
  }

  function postTo(url) {
    var form = document.createElement('form');
    form.method = 'post';
    form.action = url;
    form.appendChild(tokenField());
    document.body.appendChild(form);
    form.submit();
  }

  function selectedPks() {
    var pks = [];
    document.querySelectorAll('input.select-box:checked').forEach(function (box) {
      var hidden = box.parentElement.querySelector('input[type="hidden"]');
      if (hidden) pks.push(hidden.value);
    });
    return pks;
  }

  // List actions (the dropdown's items and its confirmation modal's "Yes"): main.js
  // bound a GET navigation to these; replace it by a POST of the selected rows.
  if (window.jQuery) {
    window.jQuery("[id^='action-custom-']").off('click');
    window.jQuery.ajaxSetup({ headers: { 'X-CSRF-Token': token } });
  }
  document.querySelectorAll("[id^='action-custom-'][data-url]").forEach(function (el) {
    el.addEventListener('click', function (event) {
      event.preventDefault();
      postTo(el.getAttribute('data-url') + '?pks=' + selectedPks().join(','));
    });
  });

  // Every form that POSTs carries the token (SQLAdmin's create/edit templates have none).
  document.querySelectorAll('form').forEach(function (form) {
    if ((form.getAttribute('method') || '').toLowerCase() === 'post' &&
        !form.querySelector('input[name="csrf_token"]')) {
      form.appendChild(tokenField());
    }
  });

  // <form data-confirm="…">: ask before sending.
  document.addEventListener('submit', function (event) {
    var question = event.target.getAttribute && event.target.getAttribute('data-confirm');
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // The sidebar's logout link: logging out is a POST too (GET shows a confirmation).
  document.querySelectorAll('a[href$="/logout"]').forEach(function (link) {
    link.addEventListener('click', function (event) {
      event.preventDefault();
      postTo(link.href);
    });
  });

  // Flash messages (SQLAdmin's flash.html showed them with an inline script).
  if (window.tabler && window.tabler.bootstrap) {
    document.querySelectorAll('.toast.admin-toast').forEach(function (el) {
      new window.tabler.bootstrap.Toast(el, { delay: 3000 }).show();
    });
  }
})();
