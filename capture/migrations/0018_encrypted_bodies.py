"""text_body, html_body and headers become capture.bodycrypt's fields, which encrypt them while
MAILWARDEN_ENCRYPT_BODIES is on. Same column types: no SQL (the lz4 compression set by 0004
stays), and existing rows are read as they are.
"""


import capture.bodycrypt
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("capture", "0017_admin_scale_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name='emailmessage',
            name='headers',
            field=capture.bodycrypt.SealedJSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name='emailmessage',
            name='html_body',
            field=capture.bodycrypt.SealedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name='emailmessage',
            name='text_body',
            field=capture.bodycrypt.SealedTextField(blank=True),
        ),
    ]
