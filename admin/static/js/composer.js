// The composer's page (templates/compose.html): a live preview rendered by the server
// (the service's own Markdown renderer: what Telegram will get), media uploads, the
// rows of URL buttons. Requests carry the session's CSRF token in the X-CSRF-Token
// header (admin/csrf.py); nothing here is inline (the Content-Security-Policy).
(function () {
  'use strict';
  var form = document.getElementById('composer');
  if (!form) return;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute('content') : '';
  var preview = document.getElementById('preview');
  var previewError = document.getElementById('preview-error');
  var lengthLabel = document.getElementById('message-length');
  var summary = document.getElementById('compose-summary');
  var submit = document.getElementById('compose-submit');
  var buttons = document.getElementById('buttons');
  var cellTemplate = document.getElementById('button-cell');

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      body: body,
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': token, 'Accept': 'application/json' }
    }).then(function (response) {
      return response.json().then(function (data) {
        return { ok: response.ok, data: data };
      });
    });
  }

  // ---------------------------------------------------------------- preview
  var timer = null;
  var asked = 0;
  function refresh() {
    var mine = ++asked;
    var body = new FormData(form);
    body.delete('csrf_token');
    post(form.getAttribute('data-preview-url'), body).then(function (answer) {
      if (mine !== asked) return;  // a newer one is on its way
      if (!answer.ok) {
        previewError.textContent = answer.data.message || 'preview unavailable';
        return;
      }
      // The server built this HTML from escaped text (admin/preview.py).
      preview.innerHTML = answer.data.html;
      previewError.textContent = answer.data.error || '';
      if (lengthLabel) {
        lengthLabel.textContent = answer.data.length + ' / ' + answer.data.limit;
        lengthLabel.classList.toggle('text-danger', answer.data.length > answer.data.limit);
      }
      preview.setAttribute('data-rendered', String(mine));
    }).catch(function () {
      previewError.textContent = 'preview unavailable';
    });
  }
  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
    describe();
  }
  form.addEventListener('input', soon);
  form.addEventListener('change', soon);

  // ---------------------------------------------------------------- summary
  function describe() {
    if (!summary) return;
    var channels = form.querySelectorAll('input[name="channel"]:checked').length;
    var when = form.querySelector('input[name="send_at"]');
    var later = when && when.value;
    if (form.querySelector('input[name="channel"]')) {
      summary.textContent = channels === 0 ? 'No channel chosen' :
        (channels === 1 ? '1 channel' : channels + ' channels (a group)') +
        (later ? ', at ' + when.value.replace('T', ' ') : ', now');
      submit.lastChild.textContent = later ? 'Schedule' : 'Post';
    }
  }

  function setAll(checked) {
    return function (event) {
      event.preventDefault();
      form.querySelectorAll('input[name="channel"]').forEach(function (box) {
        box.checked = checked;
      });
      soon();
    };
  }
  var all = document.getElementById('channels-all');
  var none = document.getElementById('channels-none');
  if (all) all.addEventListener('click', setAll(true));
  if (none) none.addEventListener('click', setAll(false));

  // ---------------------------------------------------------------- buttons
  function renumber() {
    buttons.querySelectorAll('.button-row').forEach(function (row, index) {
      row.querySelectorAll('input[name="button_row"]').forEach(function (input) {
        input.value = String(index);
      });
    });
  }
  function newCell() {
    return cellTemplate.content.firstElementChild.cloneNode(true);
  }
  function newRow() {
    var row = document.createElement('div');
    row.className = 'button-row d-flex flex-wrap gap-2 mb-2';
    var add = document.createElement('button');
    add.type = 'button';
    add.className = 'btn btn-sm btn-ghost-primary button-add';
    add.title = 'another button in this row';
    add.innerHTML = '<i class="fa-solid fa-plus"></i>';
    row.appendChild(newCell());
    row.appendChild(add);
    return row;
  }
  buttons.addEventListener('click', function (event) {
    var target = event.target.closest('button');
    if (!target) return;
    if (target.classList.contains('button-add')) {
      var row = target.closest('.button-row');
      row.insertBefore(newCell(), target);
    } else if (target.classList.contains('button-remove')) {
      var cell = target.closest('.button-cell');
      var parent = cell.closest('.button-row');
      cell.remove();
      if (!parent.querySelector('.button-cell')) parent.remove();
    } else {
      return;
    }
    renumber();
    soon();
  });
  document.getElementById('row-add').addEventListener('click', function () {
    buttons.appendChild(newRow());
    renumber();
    var inputs = buttons.querySelectorAll('input[name="button_text"]');
    inputs[inputs.length - 1].focus();
    soon();
  });

  // ---------------------------------------------------------------- media
  var fileInput = document.getElementById('media-file');
  var mediaList = document.getElementById('media-list');
  var mediaError = document.getElementById('media-error');
  var icons = { photo: 'fa-image', video: 'fa-film' };
  function chip(media) {
    var span = document.createElement('span');
    span.className = 'badge bg-secondary-lt media-chip';
    span.setAttribute('data-media-id', media.media_id);
    var hidden = document.createElement('input');
    hidden.type = 'hidden';
    hidden.name = 'media';
    hidden.value = media.media_id;
    var icon = document.createElement('i');
    icon.className = 'fa-solid me-1 ' + (icons[media.kind] || 'fa-file');
    var close = document.createElement('button');
    close.type = 'button';
    close.className = 'btn-close ms-1 media-remove';
    close.setAttribute('aria-label', 'remove');
    span.appendChild(hidden);
    span.appendChild(icon);
    span.appendChild(document.createTextNode(media.name + ' · ' + Math.ceil(media.size / 1024) + ' KB'));
    span.appendChild(close);
    return span;
  }
  if (fileInput) {
    fileInput.addEventListener('change', function () {
      var files = Array.prototype.slice.call(fileInput.files);
      mediaError.textContent = '';
      var chain = Promise.resolve();
      files.forEach(function (file) {
        chain = chain.then(function () {
          var body = new FormData();
          body.append('file', file, file.name);
          return post(form.getAttribute('data-upload-url'), body).then(function (answer) {
            if (answer.ok) {
              mediaList.appendChild(chip(answer.data));
            } else {
              mediaError.textContent = file.name + ': ' + (answer.data.message || 'refused');
            }
          });
        });
      });
      chain.catch(function () {
        mediaError.textContent = 'upload failed';
      }).then(function () {
        fileInput.value = '';
        soon();
      });
    });
  }
  if (mediaList) {
    mediaList.addEventListener('click', function (event) {
      var target = event.target.closest('.media-remove');
      if (!target) return;
      target.closest('.media-chip').remove();
      soon();
    });
  }

  describe();
  refresh();
})();
