"""The mechanism's names link to the line that defines them in the installed Django."""

import linecache

from sitegen.build import source_line, source_link


def test_a_method_a_class_attribute_and_a_module_dict_are_found_where_defined():
    for name, text in [
        ("django.core.handlers.base.BaseHandler._get_response", "def _get_response("),
        ("django.views.generic.base.View.view_is_async", "def view_is_async("),  # a classproperty
        ("django.db.utils.ConnectionHandler.thread_critical", "thread_critical = "),
        ("django.utils.log.DEFAULT_LOGGING", "DEFAULT_LOGGING = "),
    ]:
        path, line = source_line(name)
        assert text in linecache.getline(str(path), line), name


def test_a_name_this_version_lacks_is_not_linked():
    assert source_link("django.core.handlers.base.BaseHandler.no_such_method") is None
